"""stream_clipper speed: one labelled VOD (10 minutes of 1280x720 by default) end to end, per stage.

Builds the VOD with `vodgen.make_vod` (or reuses it from --cache-dir), then, in this process and with the
pipeline's own functions:

- baseline: one plain `ffmpeg -i vod -f null -` (video and audio decoded, nothing else), at the start and at
  the end of the run; every stage is also shown as a multiple of its mean, so runs on a noisy box compare;
- decode+RMS (`decode_pcm` + `window_rms`) and scene detection (`scene_changes`) alone;
- detection alone: `pipeline.analyse` with no transcription (decode+RMS and scenes run concurrently, then
  scoring), and with PocketSphinx keyword spotting when --engine is pocketsphinx;
- end to end: `pipeline.analyse` with --engine, `clips_from`, then `produce` of the top 3 clips (cut and
  1080x1920 render with subtitles) with a ClipStore on a temp SQLite and LocalStorage in a temp dir.

"x real time" below is speed: media seconds / wall seconds (higher is faster). The issue's goals: end to end
in at most half the VOD's duration (">= 2x" here), detection alone ">= 20x".

    .venv/bin/python benchmarks/stream_clipper.py [--seconds 600] [--engine pocketsphinx|kws] [--skip-render]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from creatormesh.common.media import ffmpeg_exe
from creatormesh.common.storage import LocalStorage
from creatormesh.stream_clipper.audio import decode_pcm, window_rms
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.pipeline import SAMPLE_RATE, Analysis, Parts, Progress, analyse, clips_from, produce
from creatormesh.stream_clipper.quality import keyphrases, match
from creatormesh.stream_clipper.records import ClipStatus, Job, Options
from creatormesh.stream_clipper.render import RenderConfig
from creatormesh.stream_clipper.scenes import scene_changes
from creatormesh.stream_clipper.sources import probe
from creatormesh.stream_clipper.store import ClipStore
from creatormesh.stream_clipper.stt import SpeechToText, build_engine
from creatormesh.stream_clipper.vodgen import LabelledVod, load_labels, make_vod

T = TypeVar("T")
ROWS: list[tuple[str, float]] = []


class NoSpeech:
    """An engine that hears nothing: detection without transcription."""

    name = "none"

    def transcribe(self, pcm: np.ndarray, sample_rate: int, *, offset_s: float = 0.0, language: str = "") -> list[Word]:
        """No words."""
        return []


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """fn() and its wall time in seconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def null_decode(path: Path) -> float:
    """Wall seconds of a plain ffmpeg decode of `path` (video and audio) to the null muxer."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"]
    _, seconds = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
    return seconds


def vod_for(args: argparse.Namespace) -> LabelledVod:
    """The cached VOD for these arguments, generated on first use."""
    w, h = args.size
    path = args.cache_dir / f"vod-{args.seconds:.0f}s-{w}x{h}-seed{args.seed}.mp4"
    labels = path.with_suffix(".labels.json")
    if path.is_file() and labels.is_file():
        return load_labels(labels)
    print(f"generating {path} ...", flush=True)
    vod, seconds = timed(
        lambda: make_vod(
            path, seconds=args.seconds, size=(w, h), highlights=args.highlights, decoys=args.decoys, seed=args.seed
        )
    )
    print(f"  generated in {seconds:.0f} s (not part of the benchmark)")
    return vod


LAST: dict[str, str] = {}


async def quiet(p: Progress) -> None:
    """A progress callback that keeps only the last message of each stage."""
    LAST[p.stage.name] = p.message


def parts_for(engine: SpeechToText, work: Path) -> Parts:
    """Pipeline parts as the service builds them, on local storage under `work`."""
    return Parts(
        engine=engine,
        keywords=KeywordRules.load(),
        storage=LocalStorage(work / "storage"),
        work_dir=work / "work",
        render=RenderConfig(),
    )


async def detection(engine: SpeechToText, vod: LabelledVod, work: Path, options: Options) -> tuple[Analysis, float]:
    """`pipeline.analyse` of the VOD with `engine`, and its wall time."""
    t0 = time.perf_counter()
    analysis = await analyse(
        parts_for(engine, work), vod.path, options, quiet, has_video=True, duration_s=vod.duration_s
    )
    return analysis, time.perf_counter() - t0


def row(name: str, seconds: float) -> None:
    """Record one timing row."""
    ROWS.append((name, seconds))


def report(duration: float, baseline: float) -> None:
    """The table: seconds, x real time and multiples of the baseline decode."""
    print(f"\n{'stage':<52} {'seconds':>8} {'x real time':>12} {'vs decode':>10}")
    for name, seconds in ROWS:
        speed = duration / seconds if seconds > 0 else float("inf")
        print(f"{name:<52} {seconds:8.1f} {speed:11.1f}x {seconds / baseline:9.2f}x")


def found_vs_labels(analysis: Analysis, vod: LabelledVod) -> str:
    """ "true positives / found, labels recalled / labelled" of the found windows."""
    true_pos, recalled = match([(h.start, h.end) for h in analysis.highlights], vod.highlights)
    return f"{true_pos}/{len(analysis.highlights)} found are highlights, {recalled}/{len(vod.highlights)} recalled"


async def main(args: argparse.Namespace) -> None:
    vod = vod_for(args)
    info = probe(vod.path)
    duration = info.duration_s
    print(f"VOD {vod.path}: {duration:.0f} s, {len(vod.highlights)} labelled highlights, engine {args.engine}")
    first = null_decode(vod.path)
    print(f"baseline ffmpeg decode to null: {first:.1f} s", flush=True)

    pcm, seconds = timed(lambda: decode_pcm(vod.path, SAMPLE_RATE))
    _, rms_s = timed(lambda: window_rms(pcm, SAMPLE_RATE))
    row("decode + RMS (alone)", seconds + rms_s)
    scenes, seconds = timed(lambda: scene_changes(vod.path))
    row("scene detection (alone)", seconds)
    exact = sum(any(abs(s - c) < 0.05 for s in scenes) for c in vod.cuts)
    print(f"scenes: {len(scenes)} found, {exact}/{len(vod.cuts)} labelled cuts within 50 ms", flush=True)

    options = Options(max_clips=3, render=not args.skip_render)
    kws = build_engine("pocketsphinx", keyphrases=keyphrases(KeywordRules.load()))
    engine = kws if args.engine == "kws" else build_engine("pocketsphinx")
    with tempfile.TemporaryDirectory(prefix="clipper-bench-") as tmp:
        work = Path(tmp)
        analysis, det_alone = await detection(NoSpeech(), vod, work, options)
        row("detection alone, no transcription", det_alone)
        print(f"detection alone: {found_vs_labels(analysis, vod)}", flush=True)
        if args.engine != "kws":
            analysis, seconds = await detection(kws, vod, work, options)
            row("detection with kws transcription", seconds)
            print(f"detection with kws: {found_vs_labels(analysis, vod)}", flush=True)

        store = ClipStore(f"sqlite:///{work / 'clips.db'}")
        store.create_schema()
        parts = parts_for(engine, work)
        job = Job(job_id="bench", request_id="bench", source_uri=str(vod.path), streamer="bench", stream_id="vod")
        job.options = options
        t0 = time.perf_counter()
        analysis = await analyse(parts, vod.path, options, quiet, has_video=True, duration_s=duration)
        clips = [store.save_clip(c) for c in clips_from(job, analysis)]
        t1 = time.perf_counter()
        done = [await produce(parts, store, c, vod.path, options, 0.0) for c in clips]
        total = time.perf_counter() - t0
        store.close()
        words = len(analysis.words)
        print(f"end to end ({args.engine}): {found_vs_labels(analysis, vod)}, {words} words transcribed")
        print(f"  {LAST.get('SCORING', '')}")
        for c in done:
            print(f"  clip {c.clip_id} {c.start_s:.1f}-{c.end_s:.1f} s {c.status.name.lower()} {c.error[-200:]}")
        spent = analysis.seconds
        row(f"e2e: decode+RMS || scenes ({args.engine})", spent["ANALYZING_AUDIO"])
        row(f"e2e: transcription of loud windows ({args.engine})", spent["TRANSCRIBING"])
        row("e2e: scoring", spent["SCORING"])
        row("e2e: detection without transcription", spent["ANALYZING_AUDIO"] + spent["SCORING"])
        row("e2e: detection total", t1 - t0)
        what = "cut only" if args.skip_render else "cut + 1080x1920 render"
        row(f"e2e: {what} of top {len(done)} clip(s)", total - (t1 - t0))
        row("e2e: total", total)
        failed = [c for c in done if c.status == ClipStatus.FAILED]

    last = null_decode(vod.path)
    baseline = (first + last) / 2
    row("baseline: ffmpeg decode to null (mean)", baseline)
    print(f"baseline ffmpeg decode to null: {first:.1f} s at the start, {last:.1f} s at the end")
    report(duration, baseline)
    verdict = "met" if total <= 0.5 * duration else "MISSED"
    print(f"\ngoal end to end within {0.5 * duration:.0f} s (>= 2x): {total:.0f} s, {verdict}")
    verdict = "met" if det_alone <= duration / 20 else "MISSED"
    print(f"goal detection alone within {duration / 20:.0f} s (>= 20x): {det_alone:.1f} s, {verdict}")
    if failed:
        print(f"{len(failed)} clip(s) FAILED")


if __name__ == "__main__":
    logging.getLogger("creatormesh.stream_clipper.stt").setLevel(logging.ERROR)  # keyphrases not in the dictionary
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the generated VOD")
    parser.add_argument("--engine", choices=("pocketsphinx", "kws"), default="pocketsphinx")
    parser.add_argument("--skip-render", action="store_true", help="cut the clips but do not render them")
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(1280, 720))
    parser.add_argument("--highlights", type=int, default=6)
    parser.add_argument("--decoys", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path("build/clipper-bench"))
    asyncio.run(main(parser.parse_args()))
