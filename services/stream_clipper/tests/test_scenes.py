"""scene_changes with ffmpeg scdet on a real video that has 3 hard cuts."""

from __future__ import annotations

from pathlib import Path

import pytest

from creatormesh.common.sample_media import make_video
from creatormesh.stream_clipper.scenes import parse_scdet, scene_changes


def test_scdet_finds_the_three_cuts(tmp_path: Path) -> None:
    video = make_video(tmp_path / "cuts.mp4", seconds=8.0, size=(160, 120), cuts=3)
    times = scene_changes(video)
    assert len(times) == 3
    for found, expected in zip(times, (2.0, 4.0, 6.0), strict=True):
        assert abs(found - expected) <= 0.5


def test_no_cuts_in_a_single_scene(tmp_path: Path) -> None:
    video = make_video(tmp_path / "one.mp4", seconds=3.0, size=(160, 120), pattern="color=c=black")
    assert scene_changes(video) == []


def test_parse_scdet_reads_times_from_log_lines() -> None:
    log = (
        "[Parsed_scdet_0 @ 0x1] lavfi.scd.score: 18.560, lavfi.scd.time: 2\n"
        "frame=  200 fps=0.0\n"
        "[Parsed_scdet_0 @ 0x1] lavfi.scd.score: 20.6, lavfi.scd.time: 6.04\n"
        "[Parsed_scdet_0 @ 0x1] lavfi.scd.score: 23.259, lavfi.scd.time: 4\n"
    )
    assert parse_scdet(log) == [2.0, 4.0, 6.04]


def test_missing_video_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="scdet failed"):
        scene_changes(tmp_path / "missing.mp4")
