"""detect() on real audio (ffmpeg noise with loud bursts) with a scripted transcriber."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from creatormesh.stream_clipper.audio import decode_pcm, window_rms
from creatormesh.stream_clipper.highlights import DetectorConfig, Highlight, ScoreParts, Word, detect
from creatormesh.stream_clipper.keywords import KeywordRules

HOP = 0.5
Bursts = tuple[tuple[float, float], ...]


class ScriptedTranscriber:
    """Returns the words of a fixed script inside the asked window and records every window asked."""

    def __init__(self, lines: dict[float, str]) -> None:
        self.words: list[Word] = []
        for start, line in lines.items():
            for i, token in enumerate(line.split()):
                self.words.append(Word(token, start + 0.5 * i, start + 0.5 * i + 0.4))
        self.asked: list[tuple[float, float]] = []

    def __call__(self, start_s: float, end_s: float) -> list[Word]:
        self.asked.append((start_s, end_s))
        return [w for w in self.words if w.end > start_s and w.start < end_s]  # words overlapping the window


def script(hot_at: float) -> ScriptedTranscriber:
    """Chatter every 5 s; the line at `hot_at` is full of hype keywords, the other burst gets a plain line."""
    lines = {float(t): "hello chat how are you." for t in range(0, 60, 5) if t not in (10, 40)}
    for t in (11.0, 41.0):
        lines[t] = "no way, clutch! increíble." if t == hot_at else "okay we go now."
    return ScriptedTranscriber(lines)


@pytest.fixture(scope="module")
def rules() -> KeywordRules:
    return KeywordRules.load()


def rms_of(path: Path) -> np.ndarray:
    return window_rms(decode_pcm(path), 16000, window_s=1.0, hop_s=HOP)


def overlaps(h: Highlight, span: tuple[float, float]) -> bool:
    return h.start < span[1] and span[0] < h.end


def test_finds_both_bursts_and_only_transcribes_loud_regions(
    burst_wav: Path, bursts: Bursts, rules: KeywordRules
) -> None:
    stt = script(hot_at=41.0)
    found = detect(rms_of(burst_wav), HOP, stt, rules)
    assert len(found) == 2
    for h, burst in zip(found, bursts, strict=True):
        assert overlaps(h, burst)
        assert h.start <= burst[0] and h.end >= burst[1]
    assert len(stt.asked) == 2
    for (a, b), burst in zip(stt.asked, bursts, strict=True):
        assert burst[0] - 4.0 <= a <= burst[0] and burst[1] <= b <= burst[1] + 4.0
    assert sum(b - a for a, b in stt.asked) < 20.0  # of 60 s of audio


def test_every_highlight_carries_its_score_parts(burst_wav: Path, rules: KeywordRules) -> None:
    found = detect(rms_of(burst_wav), HOP, script(hot_at=41.0), rules)
    for h in found:
        assert isinstance(h.parts, ScoreParts)
        for part in (h.parts.energy, h.parts.keywords, h.parts.scene, h.parts.chat, h.parts.total):
            assert 0.0 <= part <= 1.0
    first, second = found
    assert first.parts.energy == pytest.approx(1.0)  # the louder burst
    assert first.parts.keywords == 0.0 and first.parts.matched_keywords == ()
    assert second.parts.keywords > 0.5
    assert {"no way", "clutch", "increíble"} <= set(second.parts.matched_keywords)
    assert "clutch!" in second.transcript


@pytest.mark.parametrize("hot_at", [11.0, 41.0])
def test_keywords_decide_between_equally_loud_bursts(
    even_burst_wav: Path, bursts: Bursts, rules: KeywordRules, hot_at: float
) -> None:
    (best,) = detect(rms_of(even_burst_wav), HOP, script(hot_at), rules, config=DetectorConfig(top_n=1))
    assert overlaps(best, bursts[0] if hot_at == 11.0 else bursts[1])
    assert "clutch" in best.parts.matched_keywords


def test_louder_burst_wins_without_keywords(burst_wav: Path, bursts: Bursts, rules: KeywordRules) -> None:
    silent = ScriptedTranscriber({})
    (best,) = detect(rms_of(burst_wav), HOP, silent, rules, config=DetectorConfig(top_n=1))
    assert overlaps(best, bursts[0])


def test_scene_cuts_and_chat_velocity_add_their_parts(
    even_burst_wav: Path, bursts: Bursts, rules: KeywordRules
) -> None:
    chat = [float(t) for t in np.arange(0.0, 60.0, 3.0)] + [float(t) for t in np.arange(40.0, 44.0, 0.1)]
    stt = ScriptedTranscriber({})
    found = detect(rms_of(even_burst_wav), HOP, stt, rules, scene_times=[12.0], chat_times=chat)
    first, second = found
    assert first.parts.scene > 0 and second.parts.scene == 0
    assert second.parts.chat > first.parts.chat
    (best,) = detect(rms_of(even_burst_wav), HOP, stt, rules, chat_times=chat, config=DetectorConfig(top_n=1))
    assert overlaps(best, bursts[1])


def test_min_and_max_duration(burst_wav: Path, rules: KeywordRules) -> None:
    rms = rms_of(burst_wav)
    configs = (
        DetectorConfig(),
        DetectorConfig(min_clip_s=20.0, max_clip_s=25.0),
        DetectorConfig(min_clip_s=2.0, max_clip_s=3.0),
    )
    for cfg in configs:
        found = detect(rms, HOP, script(41.0), rules, config=cfg)
        assert found
        for h in found:
            assert cfg.min_clip_s - 1e-6 <= h.duration <= cfg.max_clip_s + 1e-6
            assert 0.0 <= h.start < h.end <= 60.0


def test_boundaries_do_not_cut_words(burst_wav: Path, rules: KeywordRules) -> None:
    stt = ScriptedTranscriber({float(t): "a b c d e f g h i j" for t in range(0, 60, 5)})
    for h in detect(rms_of(burst_wav), HOP, stt, rules):
        for w in stt.words:
            assert not (w.start < h.start < w.end)
            assert not (w.start < h.end < w.end)


def test_boundaries_move_out_of_words_even_without_silence(burst_wav: Path, rules: KeywordRules) -> None:
    stt = ScriptedTranscriber({})
    stt.words = [Word("yeah", 0.2 + 0.5 * i, 0.65 + 0.5 * i) for i in range(118)]  # talk with no pauses
    cfg = DetectorConfig(silence_db=-200.0, snap_s=0.0, min_clip_s=2.0)  # clip = region: its words are known
    found = detect(rms_of(burst_wav), HOP, stt, rules, config=cfg)
    assert len(found) == 2
    for h in found:
        assert any(w.start == h.start for w in stt.words)
        assert any(w.end == h.end for w in stt.words)


def test_overlapping_candidates_keep_the_best_and_top_n_holds(rules: KeywordRules) -> None:
    rms = np.full(240, -50.0)  # 120 s at hop 0.5
    for start, level in ((10.0, -10.0), (18.0, -5.0), (60.0, -20.0), (90.0, -15.0)):
        rms[int(start / HOP) : int((start + 2.0) / HOP)] = level
    stt = ScriptedTranscriber({})
    found = detect(rms, HOP, stt, rules, config=DetectorConfig(energy_percentile=50.0, min_clip_s=15.0))
    assert len(stt.asked) == 4
    assert len(found) == 3  # the 10 s and 18 s clips overlap once stretched to 15 s; the louder one stays
    assert [overlaps(h, (18.0, 20.0)) for h in found] == [True, False, False]
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    top2 = detect(rms, HOP, stt, rules, config=DetectorConfig(energy_percentile=50.0, top_n=2))
    assert len(top2) == 2
    assert [round(h.parts.energy, 2) for h in top2] == [1.0, round(35 / 45, 2)]


def test_flat_or_empty_audio_gives_nothing(rules: KeywordRules) -> None:
    stt = ScriptedTranscriber({})
    assert detect(np.full(100, -30.0), HOP, stt, rules) == []
    assert detect(np.zeros(0), HOP, stt, rules) == []
    assert stt.asked == []


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_clip_s"):
        DetectorConfig(min_clip_s=30.0, max_clip_s=10.0)
    with pytest.raises(ValueError, match="top_n"):
        DetectorConfig(top_n=0)
