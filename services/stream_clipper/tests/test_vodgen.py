"""vodgen: real labelled VODs (ffmpeg + espeak-ng), checked by decoding them again."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from creatormesh.stream_clipper.audio import decode_pcm, window_rms
from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.scenes import scene_changes
from creatormesh.stream_clipper.vodgen import KINDS, MIN_CALM_S, WINDOW_S, LabelledVod, load_labels, make_vod

SECONDS = 90.0


@pytest.fixture(scope="session")
def vod(tmp_path_factory: pytest.TempPathFactory) -> LabelledVod:
    """90 s, 2 highlights, a music decoy and a quiet-speech decoy, 320x180."""
    out = tmp_path_factory.mktemp("vodgen") / "vod.mp4"
    return make_vod(out, seconds=SECONDS, highlights=2, decoys=2, seed=3, size=(320, 180))


def test_streams_and_duration(vod: LabelledVod) -> None:
    with av.open(str(vod.path)) as c:
        assert c.duration is not None
        assert abs(c.duration / 1_000_000 - SECONDS) < 0.3
        (v,) = c.streams.video
        (a,) = c.streams.audio
        assert (v.codec_context.name, v.codec_context.width, v.codec_context.height) == ("h264", 320, 180)
        assert a.codec_context.name == "aac"


def test_labels_cover_the_vod_in_order(vod: LabelledVod) -> None:
    segs = vod.segments
    assert segs[0].start == 0.0 and segs[-1].end == SECONDS
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))
    assert all(0.0 <= s.start < s.end <= SECONDS for s in segs)
    assert {s.kind for s in segs} == set(KINDS)
    assert len(vod.highlights) == 2
    for s in segs:
        if s.kind == "calm":
            assert s.end - s.start >= MIN_CALM_S - 1e-9
        else:
            assert WINDOW_S[0] - 1e-9 <= s.end - s.start <= WINDOW_S[1]
    assert all(segs[i].kind == "calm" for i in range(0, len(segs), 2))


def test_keywords_only_where_labelled(vod: LabelledVod) -> None:
    rules = KeywordRules.load()
    for s in vod.segments:
        score, _ = rules.score(s.text)
        if s.kind in ("highlight", "decoy_quiet_speech"):
            assert score > 0, s
        else:
            assert score == 0, s
    assert all(s.text for s in vod.segments if s.kind != "decoy_music")


def test_labels_round_trip(vod: LabelledVod) -> None:
    assert vod.labels_path.exists()
    assert load_labels(vod.labels_path) == vod


def test_loud_windows_are_loud_and_similar(vod: LabelledVod) -> None:
    rms = window_rms(decode_pcm(vod.path), 16000, window_s=1.0, hop_s=0.5)

    def inside(kind: str) -> list[np.ndarray]:
        return [rms[int(s.start * 2) + 1 : int(s.end * 2) - 2] for s in vod.segments if s.kind == kind]

    calm_median = max(float(np.median(w)) for w in inside("calm"))
    quiet_speech = max(float(w.max()) for w in inside("decoy_quiet_speech"))
    high = [float(np.median(w)) for w in inside("highlight")]
    music = [float(np.median(w)) for w in inside("decoy_music")]
    assert min(high + music) > calm_median + 12.0
    assert min(high + music) > quiet_speech + 6.0
    peaks = [float(w.max()) for w in inside("highlight") + inside("decoy_music")]
    assert max(peaks) - min(peaks) < 4.0  # loudness alone cannot tell a highlight from music


def test_cuts_only_inside_highlights(vod: LabelledVod) -> None:
    assert len(vod.cuts) == 2
    for cut, (a, b) in zip(vod.cuts, vod.highlights, strict=True):
        assert a < cut < b
    found = scene_changes(vod.path)
    assert len(found) == 2
    assert all(abs(f - c) < 0.1 for f, c in zip(found, vod.cuts, strict=True))


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    kw = {"seconds": 50.0, "highlights": 1, "decoys": 1, "size": (160, 90), "fps": 10}
    a = make_vod(tmp_path / "a.mp4", seed=5, **kw)  # type: ignore[arg-type]
    b = make_vod(tmp_path / "b.mp4", seed=5, **kw)  # type: ignore[arg-type]
    c = make_vod(tmp_path / "c.mp4", seed=6, **kw)  # type: ignore[arg-type]
    assert (a.segments, a.cuts) == (b.segments, b.cuts)
    assert a.segments != c.segments
    rms_a, rms_b = (window_rms(decode_pcm(v.path), 16000) for v in (a, b))
    assert np.abs(rms_a - rms_b).max() < 0.5  # the AAC encoder is not bit-exact between runs
    assert np.abs(rms_a - window_rms(decode_pcm(c.path), 16000)).max() > 6.0


def test_too_short_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too short"):
        make_vod(tmp_path / "x.mp4", seconds=60.0, highlights=3, decoys=2)
    assert not (tmp_path / "x.mp4").exists()
