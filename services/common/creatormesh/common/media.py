"""Media through ffmpeg without apt: the static binary of the `imageio-ffmpeg` wheel, and audio decoded to PCM.

Used by the services that read media (stream_clipper's energy filter, viral_scoring's audio features) and by
`sample_media`. Needs the `media` extra.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


class DecodeError(RuntimeError):
    """ffmpeg could not decode the file's audio (missing file, no audio stream, unknown format, timeout)."""


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
