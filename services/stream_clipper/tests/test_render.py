"""render_clip / cut_clip on real ffmpeg output, probed and read back with PyAV."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from creatormesh.common.media import ffmpeg_exe
from creatormesh.common.sample_media import make_speech, make_video
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.render import (
    RenderConfig,
    RenderError,
    RenderResult,
    cut_clip,
    default_font_dir,
    render_clip,
    run_ffmpeg,
)

LOGO_RGB = (0, 255, 255)  # cyan: the blurred background there is magenta
CLIP = (1.0, 4.0)
WORDS = (
    Word("hello", 1.2, 1.6),
    Word("{brace}", 1.7, 2.1),
    Word("there", 2.2, 2.6),
    Word("friends", 2.7, 3.1),
)
WORD_TIME = 0.4  # clip time: "hello" is spoken and highlighted
QUIET_TIME = 2.7  # clip time: after the last word, nothing is shown
SUB_BAND = (1920 - 360 - 110, 1920 - 360 + 10)  # rows around the bottom safe margin


@dataclass(frozen=True)
class Media:
    """Test sources: a static 640x360 picture with espeak speech, and the same without audio."""

    with_speech: Path
    silent: Path


@dataclass(frozen=True)
class Renders:
    """A full render (words, logo, speech, odd paths) and a plain one (no words, no logo, no audio)."""

    full: RenderResult
    plain: RenderResult


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """smptebars is static, so frames differ only by subtitles; speech is muxed in from make_speech."""
    d = tmp_path_factory.mktemp("src")
    silent = make_video(d / "silent.mp4", seconds=5.0, size=(640, 360), pattern="smptebars", with_audio=False)
    speech = make_speech(d / "speech.wav", "This is a test of the vertical renderer. Everyone should hear it clearly.")
    with_speech = d / "speech.mp4"
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(silent), "-i", str(speech), "-af", "apad"]
    subprocess.run([*cmd, "-t", "5", "-c:v", "copy", "-c:a", "aac", str(with_speech)], check=True)
    return Media(with_speech=with_speech, silent=silent)


@pytest.fixture(scope="module")
def renders(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Renders:
    """Two renders shared by the tests (1080x1920 costs about real time per clip second)."""
    d = tmp_path_factory.mktemp("renders")
    fonts = d / "fo:n't, [s]"  # every character the filtergraph escaping has to handle
    fonts.mkdir()
    shutil.copy(default_font_dir() / "DejaVuSans-Bold.ttf", fonts)
    logo = d / "logo.png"
    Image.new("RGB", (200, 100), LOGO_RGB).save(logo)
    cfg = RenderConfig(logo=logo, font_dir=fonts)
    full = asyncio.run(render_clip(media.with_speech, *CLIP, WORDS, d / "out, [1]:a'b" / "full.mp4", cfg))
    plain = asyncio.run(render_clip(media.silent, 1.0, 3.0, [], d / "plain.mp4"))
    return Renders(full=full, plain=plain)


def frame_at(path: Path, t: float) -> np.ndarray:
    """RGB frame shown at time t (seconds)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= t - 1e-3:
                return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.int16)
    raise AssertionError(f"no frame at {t} s in {path}")


def top_level_atoms(path: Path) -> list[str]:
    """Types of the MP4 file's top-level boxes in order."""
    atoms: list[str] = []
    data = path.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        atoms.append(data[pos + 4 : pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:
            break
        pos += size
    return atoms


def leftovers(directory: Path) -> list[str]:
    """Names of the files left in a directory (hidden partial files included)."""
    return sorted(p.name for p in directory.iterdir())


def ffmpeg_children() -> list[int]:
    """Pids of this process's live (not zombie) ffmpeg children (Linux /proc)."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                if "ffmpeg" in stat and stat.rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(pid))
    return pids


def logo_patch(frame: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """Mean RGB of the inner part of the logo's place (top right, inside the margins)."""
    x1 = cfg.width - cfg.logo_margin
    x0 = x1 - cfg.logo_width
    y0 = cfg.logo_margin
    return np.asarray(frame[y0 + 20 : y0 + 80, x0 + 20 : x1 - 20].reshape(-1, 3).mean(axis=0))


def test_full_render_is_vertical_h264_aac_faststart(renders: Renders) -> None:
    r = renders.full
    assert r.path.exists() and r.path.name == "full.mp4"
    assert (r.width, r.height, r.has_audio) == (1080, 1920, True)
    assert abs(r.duration_s - 3.0) < 0.2
    with av.open(str(r.path)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.width, video.codec_context.height) == ("h264", 1080, 1920)
        assert audio.codec_context.name == "aac" and audio.codec_context.sample_rate == 48000
        assert abs(float(c.duration or 0) / 1e6 - 3.0) < 0.2
    atoms = top_level_atoms(r.path)
    assert atoms.index("moov") < atoms.index("mdat"), atoms
    assert leftovers(r.path.parent) == ["full.jpg", "full.mp4"]  # no partial files


def test_thumbnail_is_a_vertical_jpeg(renders: Renders) -> None:
    with Image.open(renders.full.thumbnail) as img:
        assert (img.format, img.size) == ("JPEG", (1080, 1920))


def test_subtitles_are_burned_in_with_the_spoken_word_highlighted(renders: Renders) -> None:
    top, bottom = SUB_BAND
    spoken = frame_at(renders.full.path, WORD_TIME)[top:bottom]
    quiet = frame_at(renders.full.path, QUIET_TIME)[top:bottom]
    no_words = frame_at(renders.plain.path, WORD_TIME)[top:bottom]
    changed = np.abs(spoken - no_words).max(axis=2) > 60
    assert changed.mean() > 0.02  # text covers a visible part of the band
    assert (np.abs(quiet - no_words).max(axis=2) > 60).mean() < 0.002  # no text after the last word
    text = spoken[changed]
    yellow = (text[:, 0] > 200) & (text[:, 1] > 200) & (text[:, 2] < 90)
    white = (text > 200).all(axis=1)
    assert yellow.sum() > 200 and white.sum() > 200  # highlighted word and the others in white
    upper = frame_at(renders.full.path, WORD_TIME)[: top - 200]
    assert (np.abs(upper - frame_at(renders.plain.path, WORD_TIME)[: top - 200]).max(axis=2) > 60).mean() < 0.02


def test_logo_is_in_the_top_right_corner_only_when_given(renders: Renders) -> None:
    cfg = RenderConfig()
    with_logo = logo_patch(frame_at(renders.full.path, 1.0), cfg)
    without = logo_patch(frame_at(renders.plain.path, 1.0), cfg)
    assert np.abs(with_logo - np.array(LOGO_RGB)).max() < 40, with_logo
    assert np.abs(without - np.array(LOGO_RGB)).max() > 80, without


async def test_loudness_is_normalised_to_minus_14_lufs(renders: Renders) -> None:
    args = ["-nostats", "-i", str(renders.full.path), "-map", "0:a", "-af", "ebur128", "-f", "null", "-"]
    err = await run_ffmpeg(args, timeout_s=60)
    summary = err[err.rindex("Summary:") :]
    lufs = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", summary)[0])
    assert abs(lufs - -14.0) <= 2.0, lufs


def test_source_without_audio_gives_a_clip_without_audio(renders: Renders) -> None:
    r = renders.plain
    assert (r.width, r.height, r.has_audio) == (1080, 1920, False)
    assert abs(r.duration_s - 2.0) < 0.2
    with av.open(str(r.path)) as c:
        assert not c.streams.audio


async def test_cut_clip_keeps_the_source_size_and_audio(media: Media, tmp_path: Path) -> None:
    out = await cut_clip(media.with_speech, 1.5, 3.5, tmp_path / "cut.mp4")
    with av.open(str(out)) as c:
        video = c.streams.video[0].codec_context
        assert (video.name, video.width, video.height) == ("h264", 640, 360)
        assert c.streams.audio[0].codec_context.name == "aac"
        assert abs(float(c.duration or 0) / 1e6 - 2.0) < 0.2
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat")
    assert leftovers(tmp_path) == ["cut.mp4"]


async def test_missing_source_raises_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="No such file"):
        await render_clip(tmp_path / "nope.mp4", 0.0, 2.0, list(WORDS), tmp_path / "out.mp4")
    with pytest.raises(RenderError):
        await cut_clip(tmp_path / "nope.mp4", 0.0, 2.0, tmp_path / "cut.mp4")
    assert leftovers(tmp_path) == []


async def test_impossible_filter_raises_and_leaves_no_file(media: Media, tmp_path: Path) -> None:
    cfg = RenderConfig(logo=tmp_path / "missing-logo.png")
    with pytest.raises(RenderError):
        await render_clip(media.with_speech, 1.0, 2.0, [], tmp_path / "out.mp4", cfg)
    with pytest.raises(RenderError, match=r"gblur|sigma|Invalid|out of range"):
        await render_clip(media.with_speech, 1.0, 2.0, [], tmp_path / "out.mp4", RenderConfig(blur_sigma=-5))
    assert leftovers(tmp_path) == []


async def test_timeout_kills_ffmpeg_and_leaves_no_partial_file(media: Media, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"timed out after 0\.01 s"):
        await render_clip(media.with_speech, 1.0, 3.0, list(WORDS), tmp_path / "out.mp4", RenderConfig(timeout_s=0.01))
    with pytest.raises(RenderError, match="timed out"):
        await cut_clip(media.with_speech, 1.0, 3.0, tmp_path / "cut.mp4", timeout_s=0.01)
    assert leftovers(tmp_path) == []
    assert ffmpeg_children() == []


async def test_cancelled_render_leaves_no_partial_file(media: Media, tmp_path: Path) -> None:
    task = asyncio.create_task(render_clip(media.with_speech, 1.0, 4.0, list(WORDS), tmp_path / "out.mp4"))
    await asyncio.sleep(0.5)
    assert not task.done() and ffmpeg_children()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []
    assert ffmpeg_children() == []
