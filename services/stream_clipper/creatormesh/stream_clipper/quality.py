"""Detection quality on labelled VODs: precision/recall of found windows for three scorer variants.

Variants: "rms-only" (energy alone, no transcription), "rms+keywords" (transcribe the loud regions, score
keywords) and "full" (keywords plus ffmpeg scene cuts). Run `python -m creatormesh.stream_clipper.quality`
to generate VODs (or pass labels files) and print a markdown table.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from creatormesh.stream_clipper.audio import decode_pcm, window_rms
from creatormesh.stream_clipper.highlights import DetectorConfig, Word, detect
from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.vodgen import LabelledVod, load_labels, make_vod

VARIANTS = ("rms-only", "rms+keywords", "full")
SAMPLE_RATE = 16000
HOP_S = 0.5
EVAL_CONFIG = DetectorConfig(min_clip_s=8.0, max_clip_s=30.0, energy_percentile=50.0, min_rise_db=8.0)
"""Clip lengths fitting the generator's 8-15 s windows. A generated VOD is ~40 % loud, so the energy threshold
is "8 dB over the median" rather than the 90th percentile tuned for real streams (mostly calm)."""
Span = tuple[float, float]


@dataclass(frozen=True)
class Quality:
    """Totals of one variant over a set of VODs; `seconds` is its wall time (transcription included)."""

    variant: str
    found: int
    labelled: int
    precision: float
    recall: float
    f1: float
    seconds: float


def _matches(found: Span, label: Span, min_overlap: float) -> bool:
    inter = min(found[1], label[1]) - max(found[0], label[0])
    if inter <= 0:
        return False
    return inter >= min_overlap * (label[1] - label[0]) or inter >= min_overlap * (found[1] - found[0])


def match(found: Sequence[Span], labelled: Sequence[Span], min_overlap: float = 0.5) -> tuple[int, int]:
    """(true-positive found windows, recalled labels).

    A found window matches a label when their overlap is >= `min_overlap` of the label's span or of the window's.
    True positives are a maximum one-to-one matching, so a second window on an already matched label is a
    false positive; a label counts as recalled when any found window matches it (one window spanning two
    labels recalls both but is one true positive).
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ValueError("min_overlap must be in (0, 1]")
    for a, b in [*found, *labelled]:
        if b < a:
            raise ValueError(f"bad span ({a}, {b}): end before start")
    edges = [[j for j, lab in enumerate(labelled) if _matches(f, lab, min_overlap)] for f in found]
    owner: dict[int, int] = {}

    def claim(i: int, seen: set[int]) -> bool:  # Kuhn's augmenting path
        for j in edges[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or claim(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    true_pos = sum(claim(i, set()) for i in range(len(found)))
    recalled = len({j for js in edges for j in js})
    return true_pos, recalled


class _CachedTranscriber:
    """Transcripts of (vod, span) shared by the variants; `billed` sums the original time of cache hits."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.cache: dict[tuple[str, float, float], tuple[list[Word], float]] = {}
        self.billed = 0.0

    def for_vod(self, key: str, pcm: np.ndarray) -> Callable[[float, float], list[Word]]:
        from creatormesh.stream_clipper.stt import transcribe_span

        def transcribe(start_s: float, end_s: float) -> list[Word]:
            span = (key, start_s, end_s)
            if span in self.cache:
                words, spent = self.cache[span]
                self.billed += spent
                return words
            t0 = time.perf_counter()
            words = transcribe_span(self.engine, pcm, SAMPLE_RATE, start_s, end_s)  # type: ignore[arg-type]
            self.cache[span] = (words, time.perf_counter() - t0)
            return words

        return transcribe


def keyphrases(rules: KeywordRules, language: str = "en") -> list[str]:
    """Plain phrases of a language's keyword patterns ("let'?s go+" -> "lets go"; other regexes skipped), for
    a keyword-spotting engine: `build_engine("pocketsphinx", keyphrases=...)` is ~50x faster than full decoding."""
    out: list[str] = []
    for p in rules.patterns:
        phrase = re.sub(r"(\w)\+", r"\1", p.source.replace("'?", "")).lower()
        if p.language == language and re.fullmatch(r"[a-z]+(?: [a-z]+)*", phrase):
            out.append(phrase)
    return list(dict.fromkeys(out))


def _no_words(_start: float, _end: float) -> list[Word]:
    return []


def _quality(variant: str, found: int, labelled: int, true_pos: int, recalled: int, seconds: float) -> Quality:
    precision = true_pos / found if found else 0.0
    recall = recalled / labelled if labelled else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(variant, found, labelled, precision, recall, f1, seconds)


def evaluate(vods: Sequence[LabelledVod], *, engine: object | None = None, top_n: int | None = None) -> list[Quality]:
    """Quality of the three variants over `vods` (one row each, in VARIANTS order).

    `top_n` (clips asked per VOD) defaults to the VOD's number of labelled highlights; `engine` is a
    `stt.SpeechToText`, PocketSphinx when None. Decoding and RMS are shared; each variant's time includes the
    transcription and scene detection it needs.
    """
    from creatormesh.stream_clipper.scenes import scene_changes

    if engine is None:
        from creatormesh.stream_clipper.stt import build_engine

        engine = build_engine("pocketsphinx")
    rules = KeywordRules.load()
    stt = _CachedTranscriber(engine)
    totals = {v: [0, 0, 0, 0, 0.0] for v in VARIANTS}  # found, labelled, true_pos, recalled, seconds
    for vod in vods:
        pcm = decode_pcm(vod.path, SAMPLE_RATE)
        rms = window_rms(pcm, SAMPLE_RATE, EVAL_CONFIG.window_s, HOP_S)
        cfg = replace(EVAL_CONFIG, top_n=max(1, top_n if top_n is not None else len(vod.highlights)))
        for variant in VARIANTS:
            t0, billed0 = time.perf_counter(), stt.billed
            if variant == "rms-only":
                conf = replace(cfg, weight_keywords=0.0, weight_scene=0.0)
                clips = detect(rms, HOP_S, _no_words, rules, config=conf)
            else:
                transcribe = stt.for_vod(str(vod.path), pcm)
                scenes = scene_changes(vod.path) if variant == "full" else []
                conf = cfg if variant == "full" else replace(cfg, weight_scene=0.0)
                clips = detect(rms, HOP_S, transcribe, rules, scene_times=scenes, config=conf)
            spent = time.perf_counter() - t0 + (stt.billed - billed0)  # cached transcripts still cost
            true_pos, recalled = match([(c.start, c.end) for c in clips], vod.highlights)
            row = totals[variant]
            for k, add in enumerate((len(clips), len(vod.highlights), true_pos, recalled, spent)):
                row[k] += add
    return [_quality(v, int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])) for v, r in totals.items()]


def format_table(rows: Sequence[Quality]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| variant | found | labelled | precision | recall | F1 | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for q in rows:
        lines.append(
            f"| {q.variant} | {q.found} | {q.labelled} | {q.precision:.2f} | {q.recall:.2f} | {q.f1:.2f} | "
            f"{q.seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: evaluate labels files, or generate `--vods` VODs into `--dir` first, and print the table."""
    ap = argparse.ArgumentParser(prog="python -m creatormesh.stream_clipper.quality", description=__doc__)
    ap.add_argument("labels", nargs="*", type=Path, help="labels JSON files written by vodgen")
    ap.add_argument("--vods", type=int, default=3, help="VODs to generate when no labels are given")
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=Path("vodgen-out"))
    ap.add_argument("--engine", choices=("pocketsphinx", "kws"), default="pocketsphinx", help="kws: keyword spotting")
    args = ap.parse_args(argv)
    engine = None
    if args.engine == "kws":
        from creatormesh.stream_clipper.stt import build_engine

        engine = build_engine("pocketsphinx", keyphrases=keyphrases(KeywordRules.load()))
    if args.labels:
        vods = [load_labels(p) for p in args.labels]
    else:
        vods = [
            make_vod(args.dir / f"vod{args.seed + i}.mp4", seconds=args.seconds, seed=args.seed + i)
            for i in range(args.vods)
        ]
    print(format_table(evaluate(vods, engine=engine)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
