"""Media through ffmpeg without apt: the static binary of the `imageio-ffmpeg` wheel; audio decoded to PCM, video
frames decoded to and encoded from RGB arrays.

Used by the services that read media (stream_clipper's energy filter, viral_scoring's audio features,
video_diffusion's outputs) and by `sample_media`. Needs the `media` extra.

ffmpeg always runs through ``subprocess.run`` without ``preexec_fn``: CPython then starts it with vfork, and no
``pthread_atfork`` handler runs in the child. (imageio-ffmpeg's frame reader and writer pass ``preexec_fn``; the
forked child then ran gRPC's fork handlers, which abort when another thread is inside gRPC.)
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import numpy as np


class DecodeError(RuntimeError):
    """ffmpeg could not decode the file's audio or video (missing file, no such stream, unknown format, timeout)."""


class EncodeError(RuntimeError):
    """ffmpeg could not encode the frames (bad arguments, full disk, timeout)."""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def decode_pcm(
    path: str | Path, sample_rate: int = 16000, *, max_seconds: float | None = None, timeout: float | None = 600.0
) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of the first audio stream of any audio/video file, resampled to
    ``sample_rate`` (at most ``max_seconds`` from the start); DecodeError with ffmpeg's message otherwise."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path)]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    cmd += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DecodeError(f"ffmpeg could not decode {path}: {exc}") from exc
    if proc.returncode != 0:
        raise DecodeError(f"ffmpeg could not decode {path}: {proc.stderr.decode(errors='replace').strip()[-400:]}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


def _ppm_frames(data: bytes) -> list[np.ndarray]:
    """Split a stream of binary PPM (P6, maxval 255) images into ``[H, W, 3]`` uint8 arrays."""
    frames: list[np.ndarray] = []
    pos = 0
    while pos < len(data):
        fields: list[bytes] = []
        while len(fields) < 4:  # magic, width, height, maxval; separated by whitespace
            while data[pos : pos + 1].isspace():
                pos += 1
            end = pos
            while end < len(data) and not data[end : end + 1].isspace():
                end += 1
            fields.append(data[pos:end])
            pos = end
        pos += 1  # the single whitespace byte before the raster
        if fields[0] != b"P6" or fields[3] != b"255":
            raise DecodeError(f"unexpected frame header {b' '.join(fields)!r} from ffmpeg")
        width, height = int(fields[1]), int(fields[2])
        size = width * height * 3
        frames.append(np.frombuffer(data, dtype=np.uint8, count=size, offset=pos).reshape(height, width, 3))
        pos += size
    return frames


def read_frames(path: str | Path, *, max_frames: int | None = None, timeout: float | None = 300.0) -> np.ndarray:
    """All frames (or the first ``max_frames``) of the first video stream as uint8 RGB ``[T, H, W, 3]``;
    DecodeError with ffmpeg's message otherwise."""
    if not Path(path).is_file():
        raise DecodeError(f"video {path} does not exist")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:v:0", "-an"]
    if max_frames is not None:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-f", "image2pipe", "-c:v", "ppm", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DecodeError(f"ffmpeg could not decode {path}: {exc}") from exc
    if proc.returncode != 0:
        raise DecodeError(f"ffmpeg could not decode {path}: {proc.stderr.decode(errors='replace').strip()[-400:]}")
    frames = _ppm_frames(proc.stdout)
    if not frames:
        raise DecodeError(f"video {path} has no frames")
    return np.stack(frames)


def write_h264(
    frames: np.ndarray, fps: float, path: str | Path, *, crf: int = 18, timeout: float | None = 300.0
) -> Path:
    """Encode uint8 RGB frames ``[T, H, W, 3]`` as H.264 MP4 (yuv420p, ``+faststart``, no audio; an odd width or
    height is padded by one pixel, as yuv420p needs). Atomic: written to a hidden temp file, then renamed."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be a [T, H, W, 3] array, got shape {frames.shape}")
    if len(frames) == 0:
        raise ValueError("video has no frames")
    _, height, width, _ = frames.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0",
        "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-crf", str(crf), "-movflags", "+faststart", "-f", "mp4", str(temp),
    ]  # fmt: skip
    raw = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    try:
        try:
            proc = subprocess.run(cmd, input=raw, capture_output=True, check=False, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EncodeError(f"ffmpeg could not write {path.name}: {exc}") from exc
        if proc.returncode != 0:
            raise EncodeError(
                f"ffmpeg could not write {path.name}: {proc.stderr.decode(errors='replace').strip()[-400:]}"
            )
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
