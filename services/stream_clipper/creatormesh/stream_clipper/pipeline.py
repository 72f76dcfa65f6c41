"""The clipping pipeline for one source (a VOD or one recorded chunk): fetch → RMS → transcribe the loud
windows → score → cut → render 9:16 → store. Progress goes to a callback; every clip is saved to the store as it
advances, so a restarted job skips what is done. Free of gRPC and Kafka code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from creatormesh.common.storage import Storage
from creatormesh.stream_clipper.audio import decode_pcm, window_rms
from creatormesh.stream_clipper.chat import load_chat_times
from creatormesh.stream_clipper.highlights import DetectorConfig, Highlight, Word, detect
from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.records import Clip, ClipStatus, Job, Options, Stage
from creatormesh.stream_clipper.render import RenderConfig, RenderError, cut_clip, render_clip
from creatormesh.stream_clipper.scenes import scene_changes
from creatormesh.stream_clipper.sources import SourceError, fetch_source, probe
from creatormesh.stream_clipper.store import ClipStore
from creatormesh.stream_clipper.stt import SpeechToText, transcribe_span

log = logging.getLogger("creatormesh.stream_clipper.pipeline")

SAMPLE_RATE = 16000
HOP_S = 0.5

# overall progress at the start of each stage
_AT = {
    Stage.DOWNLOADING: 0.0,
    Stage.ANALYZING_AUDIO: 0.05,
    Stage.TRANSCRIBING: 0.15,
    Stage.SCORING: 0.45,
    Stage.CUTTING: 0.5,
    Stage.RENDERING: 0.5,
    Stage.DONE: 1.0,
}


@dataclass(frozen=True)
class Progress:
    """One progress update; ``clip`` is set once per finished clip."""

    stage: Stage
    fraction: float
    message: str
    clip: Clip | None = None


Report = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Parts:
    """What the pipeline runs with (built once by the service)."""

    engine: SpeechToText
    keywords: KeywordRules
    storage: Storage
    work_dir: Path
    render: RenderConfig
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    scene_threshold: float = 10.0
    ffmpeg_timeout_s: float = 600.0


@dataclass(frozen=True)
class Analysis:
    """What detection found in one source."""

    duration_s: float
    highlights: list[Highlight]
    words: list[Word]
    seconds: dict[str, float]


def detector_for(base: DetectorConfig, options: Options) -> DetectorConfig:
    return replace(base, top_n=options.max_clips, min_clip_s=options.min_duration_s, max_clip_s=options.max_duration_s)


async def analyse(
    parts: Parts, path: Path, options: Options, report: Report, *, has_video: bool, duration_s: float
) -> Analysis:
    """Energy, selective transcription, keyword/scene/chat scoring: the clip windows of one local file."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    await report(Progress(Stage.ANALYZING_AUDIO, _AT[Stage.ANALYZING_AUDIO], "decoding audio and measuring energy"))
    pcm_task = asyncio.to_thread(decode_pcm, path, SAMPLE_RATE, timeout=parts.ffmpeg_timeout_s)
    scene_task = (
        asyncio.to_thread(scene_changes, path, parts.scene_threshold, parts.ffmpeg_timeout_s)
        if has_video
        else _no_scenes()
    )
    pcm, scenes = await asyncio.gather(pcm_task, scene_task)
    rms = window_rms(pcm, SAMPLE_RATE, window_s=parts.detector.window_s, hop_s=HOP_S)
    chat = await asyncio.to_thread(load_chat_times, options.chat_log_uri) if options.chat_log_uri else []
    seconds[Stage.ANALYZING_AUDIO.name] = time.perf_counter() - t0

    loop = asyncio.get_running_loop()
    words: list[Word] = []
    spent = {"stt": 0.0, "regions": 0}

    def transcribe(start: float, end: float) -> Sequence[Word]:
        t = time.perf_counter()
        spent["regions"] += 1
        message = f"transcribing window {spent['regions']} ({start:.0f}-{end:.0f} s)"
        fraction = _AT[Stage.TRANSCRIBING] + min(end / max(duration_s, 1e-9), 1.0) * 0.3
        asyncio.run_coroutine_threadsafe(_emit(report, Progress(Stage.TRANSCRIBING, fraction, message)), loop).result()
        found = transcribe_span(parts.engine, pcm, SAMPLE_RATE, start, end, language=options.language)
        words.extend(found)
        spent["stt"] += time.perf_counter() - t
        return found

    await report(Progress(Stage.TRANSCRIBING, _AT[Stage.TRANSCRIBING], "transcribing the loud windows"))
    t1 = time.perf_counter()
    cfg = detector_for(parts.detector, options)
    found = await asyncio.to_thread(detect, rms, HOP_S, transcribe, parts.keywords, scenes, chat, cfg)
    seconds[Stage.TRANSCRIBING.name] = spent["stt"]
    seconds[Stage.SCORING.name] = time.perf_counter() - t1 - spent["stt"]
    words.sort(key=lambda w: w.start)
    message = f"{len(found)} highlight(s) in {spent['regions']} loud window(s)"
    await report(Progress(Stage.SCORING, _AT[Stage.SCORING], message))
    return Analysis(duration_s=duration_s, highlights=found, words=words, seconds=seconds)


async def _emit(report: Report, progress: Progress) -> None:
    await report(progress)


async def _no_scenes() -> list[float]:
    return []


def clips_from(job: Job, analysis: Analysis, *, offset_s: float = 0.0, id_prefix: str | None = None) -> list[Clip]:
    """Clip records (DETECTED) for the highlights; ids are stable for a job, so a re-run finds the same clips."""
    prefix = id_prefix or job.job_id
    clips = []
    for i, h in enumerate(analysis.highlights):
        inside = [w for w in analysis.words if w.start >= h.start - 0.05 and w.end <= h.end + 0.05]
        clips.append(
            Clip(
                clip_id=f"{prefix}-c{i:02d}",
                job_id=job.job_id,
                stream_id=job.stream_id,
                streamer=job.streamer,
                start_s=h.start + offset_s,
                end_s=h.end + offset_s,
                transcript=h.transcript,
                words=[Word(w.text, w.start + offset_s, w.end + offset_s, w.confidence) for w in inside],
                language=job.options.language or "en",
                score=h.parts,
            )
        )
    return clips


async def produce(parts: Parts, store: ClipStore, clip: Clip, source: Path, options: Options, offset_s: float) -> Clip:
    """Cut (and render) one clip and store its media; the clip is saved after each step. Failures are recorded
    on the clip (status FAILED), never raised."""
    out_dir = parts.work_dir / "clips" / clip.stream_id
    out_dir.mkdir(parents=True, exist_ok=True)
    key = f"{clip.streamer}/{clip.stream_id}/{clip.clip_id}"
    start, end = clip.start_s - offset_s, clip.end_s - offset_s
    try:
        if clip.status == ClipStatus.DETECTED:
            cut = await cut_clip(source, start, end, out_dir / f"{clip.clip_id}.mp4", timeout_s=parts.ffmpeg_timeout_s)
            clip.source_media_uri = await asyncio.to_thread(parts.storage.put_file, cut, f"{key}.mp4")
            clip.status = ClipStatus.CUT
            clip = await asyncio.to_thread(store.save_clip, clip)
        if clip.status == ClipStatus.CUT and options.render:
            local_words = [Word(w.text, w.start - offset_s, w.end - offset_s, w.confidence) for w in clip.words]
            out = out_dir / f"{clip.clip_id}.9x16.mp4"
            result = await render_clip(source, start, end, local_words, out, parts.render)
            clip.rendered_media_uri = await asyncio.to_thread(
                parts.storage.put_file, result.path, f"{key}.9x16.mp4", content_type="video/mp4"
            )
            clip.thumbnail_uri = await asyncio.to_thread(
                parts.storage.put_file, result.thumbnail, f"{key}.jpg", content_type="image/jpeg"
            )
            clip.status = ClipStatus.RENDERED
        clip.ready = True
        clip = await asyncio.to_thread(store.save_clip, clip)
    except (RenderError, OSError, RuntimeError) as exc:
        log.warning("clip %s failed: %s", clip.clip_id, exc)
        clip.status, clip.error = ClipStatus.FAILED, str(exc)[-1000:]
        clip = await asyncio.to_thread(store.save_clip, clip)
    return clip


class JobRunner:
    """Runs (or resumes) one VOD job to DONE or FAILED, saving progress to the store."""

    def __init__(self, parts: Parts, store: ClipStore) -> None:
        self.parts = parts
        self.store = store

    async def run(self, job: Job, report: Report) -> Job:
        async def update(p: Progress) -> None:
            job.stage, job.fraction, job.message = p.stage, max(job.fraction, p.fraction), p.message
            await asyncio.to_thread(self.store.update_job, job)
            await report(replace(p, fraction=job.fraction))

        try:
            await self._run(job, update)
        except (SourceError, RuntimeError, OSError) as exc:
            log.warning("job %s failed: %s", job.job_id, exc)
            job.stage, job.error, job.message = Stage.FAILED, str(exc)[-2000:], "failed"
            await asyncio.to_thread(self.store.update_job, job)
            await report(Progress(Stage.FAILED, job.fraction, job.message))
        return job

    async def _run(self, job: Job, update: Report) -> None:
        t0 = time.perf_counter()
        await update(Progress(Stage.DOWNLOADING, _AT[Stage.DOWNLOADING], f"fetching {job.source_uri}"))
        source = await fetch_source(job.source_uri, self.parts.work_dir / "sources" / job.job_id, self.parts.storage)
        info = await asyncio.to_thread(probe, source)
        job.source_duration_s = info.duration_s
        job.stage_seconds[Stage.DOWNLOADING.name] = time.perf_counter() - t0
        clips = await asyncio.to_thread(self.store.job_clips, job.job_id)
        if not clips:  # a resumed job whose clips are saved skips detection
            analysis = await analyse(
                self.parts, source, job.options, update, has_video=info.has_video, duration_s=info.duration_s
            )
            job.stage_seconds.update(analysis.seconds)
            clips = [await asyncio.to_thread(self.store.save_clip, c) for c in clips_from(job, analysis)]
        await self._produce(job, clips, source, update)
        await update(Progress(Stage.DONE, 1.0, f"done: {len(clips)} clip(s)"))

    async def _produce(self, job: Job, clips: list[Clip], source: Path, update: Report) -> None:
        stage = Stage.RENDERING if job.options.render else Stage.CUTTING
        spent = 0.0
        for i, clip in enumerate(clips):
            if clip.status in (ClipStatus.RENDERED, ClipStatus.FAILED) or (
                clip.status == ClipStatus.CUT and not job.options.render
            ):
                continue
            fraction = _AT[stage] + 0.5 * i / max(len(clips), 1)
            await update(Progress(stage, fraction, f"{stage.name.lower()} clip {i + 1}/{len(clips)}"))
            t = time.perf_counter()
            done = await produce(self.parts, self.store, clip, source, job.options, 0.0)
            spent += time.perf_counter() - t
            fraction = _AT[stage] + 0.5 * (i + 1) / max(len(clips), 1)
            await update(Progress(stage, fraction, f"clip {i + 1}/{len(clips)} {done.status.name.lower()}", done))
        job.stage_seconds[stage.name] = job.stage_seconds.get(stage.name, 0.0) + spent
