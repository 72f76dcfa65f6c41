"""The kit's ffmpeg video helpers: encode RGB frames to H.264 MP4 and decode them back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.media import DecodeError, EncodeError, ffmpeg_exe, read_frames, write_h264


def gradient(count: int, height: int, width: int) -> np.ndarray:
    t = np.arange(count)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    r = (x * 255 // max(width - 1, 1) + 0 * y + 0 * t).astype(np.uint8)
    g = (y * 255 // max(height - 1, 1) + 0 * x + 0 * t).astype(np.uint8)
    b = np.broadcast_to((t * 255 // max(count - 1, 1)).astype(np.uint8), r.shape)
    return np.stack([r, g, b], axis=-1)


def probe(path: Path) -> str:
    """ffmpeg's description of the file (the wheel ships no ffprobe): codec, pixel format, size, frame rate."""
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        capture_output=True, check=True, text=True,
    ).stderr  # fmt: skip


def test_round_trip_keeps_size_count_and_picture(tmp_path: Path) -> None:
    frames = gradient(9, 48, 64)
    out = write_h264(frames, 8, tmp_path / "v.mp4")
    assert out.is_file() and not list(tmp_path.glob(".*"))  # no temp file left
    info = probe(out)
    assert "h264" in info and "yuv420p" in info and "64x48" in info and "8 fps" in info
    back = read_frames(out)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4.0  # lossy, but the same picture
    assert read_frames(out, max_frames=3).shape[0] == 3


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    back = read_frames(write_h264(gradient(2, 33, 17), 4, tmp_path / "odd.mp4"))
    assert back.shape == (2, 34, 18, 3)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        write_h264(np.zeros((0, 8, 8, 3), np.uint8), 8, tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        write_h264(np.zeros((2, 8, 8), np.uint8), 8, tmp_path / "gray.mp4")
    with pytest.raises(EncodeError, match="ffmpeg could not write"):
        write_h264(gradient(2, 8, 8), 0, tmp_path / "v.mp4")  # no frame rate
    assert not list(tmp_path.iterdir())  # nothing left behind
    with pytest.raises(DecodeError, match="does not exist"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(json.dumps({"not": "video"}).encode())
    with pytest.raises(DecodeError, match="could not decode"):
        read_frames(tmp_path / "junk.mp4")
