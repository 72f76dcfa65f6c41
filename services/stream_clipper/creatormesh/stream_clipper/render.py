"""Cutting and 9:16 rendering with ffmpeg, run as an async subprocess with a timeout.

`render_clip` makes a vertical clip in one ffmpeg run: a blurred, scaled-up copy of the frame as background,
the original centred on it, word-by-word subtitles (ASS through libass), an optional logo, loudness normalised
to EBU R128 -14 LUFS, H.264 + AAC with the moov atom first. Outputs are written to a temp name next to the
target and renamed on success, so a failed, timed-out or cancelled run leaves no file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from creatormesh.common.media import ffmpeg_exe
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.subtitles import ass_subtitles

_STDERR_TAIL = 1500
_COMPRESSOR = "acompressor=threshold=-24dB:ratio=4:attack=5:release=50"
"""Gentle compression before loudnorm: peaky speech cannot reach -14 LUFS under a -1.5 dBTP ceiling otherwise."""


class RenderError(RuntimeError):
    """ffmpeg failed (with the tail of its stderr) or timed out."""


@dataclass(frozen=True, kw_only=True)
class RenderConfig:
    """Output size and encoding, background blur, subtitle style and safe margins, logo and loudness target."""

    width: int = 1080
    height: int = 1920
    fps: int = 30
    loudness_lufs: float = -14.0
    true_peak_db: float = -1.5
    background_scale: float = 0.25
    blur_sigma: float = 20.0
    font_dir: Path | None = None
    font_name: str = "DejaVu Sans"
    font_size: int = 64
    highlight_colour: str = "&H0000FFFF"
    logo: Path | None = None
    logo_width: int = 220
    logo_margin: int = 48
    margin_v: int = 360
    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    timeout_s: float = 600.0


@dataclass(frozen=True)
class RenderResult:
    """The rendered clip, its JPEG thumbnail and what ffprobe-like probing found in the output."""

    path: Path
    thumbnail: Path
    duration_s: float
    width: int
    height: int
    has_audio: bool


def default_font_dir() -> Path:
    """matplotlib's bundled TrueType fonts (DejaVu Sans), so libass finds a font on a machine without any."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def filter_path(path: str | Path) -> str:
    """A path escaped for a filter option value inside a filtergraph (both escaping levels)."""
    value = "".join("\\" + c if c in "\\':" else c for c in str(path))
    return "".join("\\" + c if c in "\\'[],;" else c for c in value)


async def run_ffmpeg(args: Sequence[str], *, timeout_s: float) -> str:
    """Run ffmpeg with `args`; its stderr text, or RenderError on a nonzero exit or after `timeout_s` (the
    process is killed on timeout and on cancellation)."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-y",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    except TimeoutError:
        raise RenderError(f"ffmpeg timed out after {timeout_s:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    text = err.decode(errors="replace")
    if proc.returncode != 0:
        raise RenderError(f"ffmpeg failed ({proc.returncode}): {text.strip()[-_STDERR_TAIL:]}")
    return text


@contextlib.contextmanager
def _partial(out: Path, suffix: str) -> Iterator[Path]:
    """A temp path next to `out`, removed unless the caller renamed it away."""
    tmp = out.parent / f".{out.stem}.partial{suffix}"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _encode_args(cfg: RenderConfig) -> list[str]:
    return ["-c:v", "libx264", "-preset", cfg.preset, "-crf", str(cfg.crf), "-pix_fmt", "yuv420p"]


async def cut_clip(source: str | Path, start: float, end: float, out: Path, *, timeout_s: float = 300.0) -> Path:
    """Frame-accurate cut of [start, end) re-encoded to H.264/AAC at the source size, faststart; atomic."""
    start = max(0.0, start)
    if end <= start:
        raise RenderError(f"empty cut: end {end} <= start {start}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _partial(out, ".mp4") as tmp:
        args = ["-v", "error", "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}", "-i", str(source)]
        args += ["-map", "0:v:0", "-map", "0:a:0?", *_encode_args(RenderConfig())]
        args += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(tmp)]
        await run_ffmpeg(args, timeout_s=timeout_s)
        os.replace(tmp, out)
    return out


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def video_filter(cfg: RenderConfig, ass_path: Path | None, font_dir: Path, with_logo: bool) -> str:
    """The filter_complex: blurred background, centred original, subtitles, optional logo -> [v]."""
    w, h = cfg.width, cfg.height
    bw, bh = _even(w * cfg.background_scale), _even(h * cfg.background_scale)
    parts = [
        "[0:v]split=2[bgsrc][fgsrc]",
        f"[bgsrc]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},"
        f"gblur=sigma={cfg.blur_sigma:g},scale={w}:{h},setsar=1[bg]",
        f"[fgsrc]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1[fg]",
        f"[bg][fg]overlay=x=(W-w)/2:y=(H-h)/2,fps={cfg.fps}[base]",
    ]
    last = "base"
    if ass_path is not None:
        parts.append(f"[base]ass=filename={filter_path(ass_path)}:fontsdir={filter_path(font_dir)}[sub]")
        last = "sub"
    if with_logo:
        m = cfg.logo_margin
        parts.append(f"[1:v]scale={cfg.logo_width}:-2,format=rgba[logo]")
        parts.append(f"[{last}][logo]overlay=x=W-w-{m}:y={m}:format=auto[lg]")
        last = "lg"
    parts.append(f"[{last}]format=yuv420p[v]")
    return ";".join(parts)


def _probe(path: Path) -> tuple[float, int, int, bool]:
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        duration = float(container.duration or 0) / 1_000_000
        return duration, int(video.codec_context.width), int(video.codec_context.height), bool(container.streams.audio)


async def render_clip(
    source: str | Path,
    start: float,
    end: float,
    words: Sequence[Word],
    out: Path,
    cfg: RenderConfig | None = None,
) -> RenderResult:
    """Render [start, end) of `source` as a vertical clip with burned-in subtitles from `words` (source seconds)
    and a JPEG thumbnail of its middle frame at `out.with_suffix(".jpg")`; RenderError on any failure."""
    cfg = cfg or RenderConfig()
    start = max(0.0, start)
    if end <= start:
        raise RenderError(f"empty clip: end {end} <= start {start}")
    out.parent.mkdir(parents=True, exist_ok=True)
    thumb = out.with_suffix(".jpg")
    font_dir = cfg.font_dir or default_font_dir()
    with (
        tempfile.TemporaryDirectory(prefix="render-") as work,
        _partial(out, ".mp4") as tmp,
        _partial(out, ".jpg") as tmp_thumb,
    ):
        ass_path: Path | None = None
        if words:
            ass_path = Path(work) / "subs.ass"
            ass_path.write_text(ass_subtitles(words, start, end, cfg), encoding="utf-8")
        args = ["-v", "error", "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}", "-i", str(source)]
        if cfg.logo is not None:
            args += ["-i", str(cfg.logo)]
        loudnorm = f"{_COMPRESSOR},loudnorm=I={cfg.loudness_lufs:g}:TP={cfg.true_peak_db:g}:LRA=11,aresample=48000"
        args += ["-filter_complex", video_filter(cfg, ass_path, font_dir, cfg.logo is not None)]
        args += ["-map", "[v]", "-map", "0:a:0?", "-af", loudnorm, *_encode_args(cfg)]
        args += ["-c:a", "aac", "-b:a", cfg.audio_bitrate, "-ar", "48000", "-movflags", "+faststart"]
        args += ["-f", "mp4", str(tmp)]
        await run_ffmpeg(args, timeout_s=cfg.timeout_s)
        try:
            duration, width, height, has_audio = await asyncio.to_thread(_probe, tmp)
        except Exception as exc:  # PyAV raises its own error types for unreadable files
            raise RenderError(f"rendered file is unreadable: {exc}") from exc
        thumb_args = ["-v", "error", "-ss", f"{duration / 2:.3f}", "-i", str(tmp), "-frames:v", "1"]
        thumb_timeout = min(60.0, cfg.timeout_s)
        await run_ffmpeg([*thumb_args, "-q:v", "3", "-f", "image2", str(tmp_thumb)], timeout_s=thumb_timeout)
        os.replace(tmp_thumb, thumb)
        try:
            os.replace(tmp, out)
        except OSError:
            thumb.unlink(missing_ok=True)
            raise
    return RenderResult(out, thumb, duration, width, height, has_audio)
