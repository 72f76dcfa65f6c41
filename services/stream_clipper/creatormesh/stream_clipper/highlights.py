"""Cheap-first highlight detection: energy filter, then transcripts, keywords, scene cuts and chat velocity.

`detect` only asks `transcribe` for the high-energy regions. Every part of a clip's score is kept in its
`ScoreParts` (each part normalised to [0, 1]) so a person can see why it was chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from creatormesh.stream_clipper.audio import silences

_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")


@dataclass(frozen=True)
class Word:
    """A transcribed word with its start/end in seconds from the start of the stream and the recogniser's
    confidence in [0, 1] (1 when the engine gives none)."""

    text: str
    start: float
    end: float
    confidence: float = 1.0


@dataclass(frozen=True)
class ScoreParts:
    """Normalised score parts (0..1), their weighted total, and the keywords that matched."""

    energy: float
    keywords: float
    scene: float
    chat: float
    total: float
    matched_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Highlight:
    """A clip [start, end) in seconds, why it was chosen, and the words spoken in it."""

    start: float
    end: float
    parts: ScoreParts
    transcript: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    """Weights, the fast-filter threshold and clip shaping.

    Weights of scene and chat only count when scene times / chat times are given; the total is the weighted mean
    of the parts that were measured, so it stays in [0, 1].
    """

    weight_energy: float = 0.4
    weight_keywords: float = 0.35
    weight_scene: float = 0.1
    weight_chat: float = 0.15
    energy_percentile: float = 90.0
    min_rise_db: float = 3.0
    window_s: float = 1.0
    merge_gap_s: float = 2.0
    padding_s: float = 2.0
    snap_s: float = 3.0
    min_clip_s: float = 15.0
    max_clip_s: float = 60.0
    top_n: int = 5
    silence_db: float | None = None
    keyword_saturation: float = 3.0
    scene_saturation: int = 2
    chat_saturation: float = 3.0

    def __post_init__(self) -> None:
        if self.min_clip_s <= 0 or self.max_clip_s < self.min_clip_s:
            raise ValueError("need 0 < min_clip_s <= max_clip_s")
        if self.top_n < 1:
            raise ValueError("top_n must be >= 1")
        if not 0.0 <= self.energy_percentile <= 100.0:
            raise ValueError("energy_percentile must be in [0, 100]")


class KeywordScorer(Protocol):
    """Anything that scores text like `KeywordRules`."""

    def score(self, text: str) -> tuple[float, list[str]]: ...


Transcriber = Callable[[float, float], Sequence[Word]]


@dataclass(frozen=True)
class _Region:
    start: float
    end: float
    peak_time: float
    peak_db: float


def _regions(rms: np.ndarray, hop_s: float, cfg: DetectorConfig, duration: float) -> list[_Region]:
    """High-energy windows merged into padded regions."""
    median = float(np.median(rms))
    threshold = max(float(np.percentile(rms, cfg.energy_percentile)), median + cfg.min_rise_db)
    loud = np.flatnonzero(rms >= threshold)
    regions: list[_Region] = []
    group: list[int] = []
    for idx in loud.tolist():
        if group and idx * hop_s > group[-1] * hop_s + cfg.window_s + cfg.merge_gap_s:
            regions.append(_region(group, rms, hop_s, cfg, duration))
            group = []
        group.append(idx)
    if group:
        regions.append(_region(group, rms, hop_s, cfg, duration))
    return regions


def _region(group: list[int], rms: np.ndarray, hop_s: float, cfg: DetectorConfig, duration: float) -> _Region:
    peak = max(group, key=lambda i: float(rms[i]))
    start = max(0.0, group[0] * hop_s - cfg.padding_s)
    end = min(duration, group[-1] * hop_s + cfg.window_s + cfg.padding_s)
    return _Region(start, end, peak * hop_s + cfg.window_s / 2, float(rms[peak]))


def _edges(words: Sequence[Word], quiet: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Good clip starts and ends: silence edges, word edges and sentence edges."""
    starts = [a for a, _ in quiet] + [b for _, b in quiet]
    ends = list(starts)
    for i, w in enumerate(words):
        if i == 0 or words[i - 1].text.rstrip().endswith(_SENTENCE_END):
            starts.append(w.start)
        if w.text.rstrip().endswith(_SENTENCE_END) or i == len(words) - 1:
            ends.append(w.end)
    return starts, ends


def _snap(t: float, edges: list[float], quiet: list[tuple[float, float]], snap_s: float) -> float:
    if any(a <= t <= b for a, b in quiet):
        return t
    near = [e for e in edges if abs(e - t) <= snap_s]
    return min(near, key=lambda e: abs(e - t)) if near else t


def _snap_out(
    start: float,
    end: float,
    edges: tuple[list[float], list[float]],
    quiet: list[tuple[float, float]],
    cfg: DetectorConfig,
) -> tuple[float, float]:
    """After clamping, move each edge outwards (never inwards) to a good edge if the clip stays <= max_clip_s."""
    if not any(a <= start <= b for a, b in quiet):
        before = [e for e in edges[0] if start - cfg.snap_s <= e <= start and end - e <= cfg.max_clip_s]
        start = max(before, default=start)
    if not any(a <= end <= b for a, b in quiet):
        after = [e for e in edges[1] if end <= e <= end + cfg.snap_s and e - start <= cfg.max_clip_s]
        end = min(after, default=end)
    return start, end


def _keep_words_whole(start: float, end: float, words: Sequence[Word], max_s: float) -> tuple[float, float]:
    """Move edges that fall inside a word out to that word's edge (dropping the word if that exceeds max_s)."""
    for w in words:
        if w.start < start < w.end:
            start = w.start if end - w.start <= max_s else w.end
        if w.start < end < w.end:
            end = w.end if w.end - start <= max_s else w.start
    return start, end


def _clamp(start: float, end: float, peak: float, cfg: DetectorConfig, duration: float) -> tuple[float, float]:
    """Stretch to min_clip_s around the clip, or cut to max_clip_s around the energy peak, inside the stream."""
    length = end - start
    if length < cfg.min_clip_s:
        grow = (cfg.min_clip_s - length) / 2
        start, end = start - grow, end + grow
    elif length > cfg.max_clip_s:
        start = min(max(start, peak - cfg.max_clip_s / 2), end - cfg.max_clip_s)
        end = start + cfg.max_clip_s
    if start < 0:
        start, end = 0.0, end - start
    if end > duration:
        start, end = max(0.0, start - (end - duration)), duration
    return start, end


def _chat_part(chat: np.ndarray, start: float, end: float, duration: float, saturation: float) -> float:
    if chat.size == 0 or end <= start:
        return 0.0
    base_rate = chat.size / max(duration, 1e-9)
    rate = float(np.count_nonzero((chat >= start) & (chat < end))) / (end - start)
    ratio = rate / base_rate
    return float(np.clip((ratio - 1.0) / max(saturation - 1.0, 1e-9), 0.0, 1.0))


def detect(
    rms: np.ndarray,
    hop_s: float,
    transcribe: Transcriber,
    keywords: KeywordScorer,
    scene_times: Sequence[float] = (),
    chat_times: Sequence[float] = (),
    config: DetectorConfig | None = None,
) -> list[Highlight]:
    """Top highlights of a stream, sorted by start time.

    `rms` is per-window energy in dBFS (see `audio.window_rms`; window i starts at i * hop_s and lasts
    config.window_s). `transcribe(start_s, end_s)` is called once per high-energy region only.
    """
    cfg = config or DetectorConfig()
    levels = np.asarray(rms, dtype=np.float64)
    if levels.size == 0:
        return []
    duration = (levels.size - 1) * hop_s + cfg.window_s
    floor, top = float(np.median(levels)), float(levels.max())
    silence_db = cfg.silence_db if cfg.silence_db is not None else float(np.percentile(levels, 10)) + 6.0
    quiet = silences(levels, silence_db, hop_s=hop_s)
    scenes = np.asarray(sorted(scene_times), dtype=np.float64)
    chat = np.asarray(sorted(chat_times), dtype=np.float64)
    weights = {"energy": cfg.weight_energy, "keywords": cfg.weight_keywords}
    if scenes.size:
        weights["scene"] = cfg.weight_scene
    if chat.size:
        weights["chat"] = cfg.weight_chat
    weight_sum = sum(weights.values()) or 1.0

    scored: list[Highlight] = []
    for region in _regions(levels, hop_s, cfg, duration):
        words = sorted(transcribe(region.start, region.end), key=lambda w: w.start)
        text = " ".join(w.text for w in words)
        kw_raw, matched = keywords.score(text)
        starts, ends = _edges(words, quiet)
        start = _snap(region.start, starts, quiet, cfg.snap_s)
        end = _snap(region.end, ends, quiet, cfg.snap_s)
        start, end = _clamp(start, end if end > start else region.end, region.peak_time, cfg, duration)
        start, end = _snap_out(start, end, (starts, ends), quiet, cfg)
        start, end = _keep_words_whole(start, end, words, cfg.max_clip_s)
        parts = {
            "energy": float(np.clip((region.peak_db - floor) / max(top - floor, 1e-9), 0.0, 1.0)),
            "keywords": min(kw_raw / cfg.keyword_saturation, 1.0),
            "scene": min(float(np.count_nonzero((scenes >= start) & (scenes < end))) / cfg.scene_saturation, 1.0),
            "chat": _chat_part(chat, start, end, duration, cfg.chat_saturation),
        }
        total = sum(weights[k] * parts[k] for k in weights) / weight_sum
        spoken = " ".join(w.text for w in words if w.start >= start and w.end <= end)
        score = ScoreParts(parts["energy"], parts["keywords"], parts["scene"], parts["chat"], total, tuple(matched))
        scored.append(Highlight(start, end, score, spoken))
    return _pick(scored, cfg.top_n)


def _pick(candidates: list[Highlight], top_n: int) -> list[Highlight]:
    """Greedy by total score: drop clips overlapping a better one, keep top_n, sort by time."""
    chosen: list[Highlight] = []
    for h in sorted(candidates, key=lambda c: (-c.parts.total, c.start)):
        if all(h.end <= c.start or c.end <= h.start for c in chosen):
            chosen.append(h)
        if len(chosen) == top_n:
            break
    return sorted(chosen, key=lambda c: c.start)
