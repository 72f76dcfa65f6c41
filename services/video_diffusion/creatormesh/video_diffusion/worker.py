"""Runs one generation job: claims it in the store (a lease, renewed while it works), generates the candidates
that are not done yet, writes each as an MP4 plus a poster frame to storage, measures its quality and records it
with its ``videos.generated`` event. Transport-free: the service gives it a queue heartbeat and a progress sink.

A job is never done twice: a candidate is recorded only while this worker still owns the job, so a worker that
lost its lease (presumed dead, job taken over) or whose job was cancelled stops at the next denoising step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from creatormesh.common.storage import Storage

from . import events
from .engine import Engine, Video, write_mp4
from .limits import Params
from .prompts import PromptVariator
from .records import Candidate, CandidateStatus, Job, JobStatus
from .store import JobStore

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The job was cancelled or taken over while generating: stop without recording anything."""


@dataclass(frozen=True)
class Progress:
    """One progress update of a job (step-level while a candidate is denoised)."""

    job_id: str
    status: JobStatus
    fraction: float
    message: str
    candidate_index: int | None = None
    candidate_id: str = ""
    step: int = 0
    total_steps: int = 0
    candidate: Candidate | None = None
    error: str = ""


class QualityMeter(Protocol):
    def __call__(self, frames: np.ndarray, prompt: str) -> dict[str, float]: ...


class AdapterSwitch(Protocol):
    def __call__(self, version: str) -> None: ...


@dataclass
class Parts:
    """What a runner needs; shared by the service's workers."""

    store: JobStore
    engine: Engine
    storage: Storage
    work_dir: Path
    owner: str
    lease_s: float
    measure: QualityMeter
    max_attempts: int | None = None
    variator: PromptVariator = field(default_factory=PromptVariator)
    use_adapter: AdapterSwitch | None = None
    on_candidate: Callable[[Job, Candidate], None] | None = None


def poster(video: Video, path: Path) -> Path:
    """The middle frame as a JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(video.frames[len(video.frames) // 2]).save(path, format="JPEG", quality=90)
    return path


class JobRunner:
    """Runs jobs with ``parts``; ``publish`` receives progress (called on the event loop)."""

    def __init__(self, parts: Parts, publish: Callable[[Progress], None]) -> None:
        self.parts = parts
        self.publish = publish
        self._stops: dict[str, threading.Event] = {}

    def stop(self, job_id: str) -> None:
        """Ask a job running here to stop at its next step (after CancelJob)."""
        event = self._stops.get(job_id)
        if event is not None:
            event.set()

    async def run(self, job_id: str, heartbeat: Callable[[], Awaitable[None]] | None = None) -> JobStatus | None:
        """Claim and run ``job_id``; its final status, or None when it was not claimable (finished, cancelled,
        or owned by a live worker) or this worker stopped (cancelled or taken over)."""
        p = self.parts
        job = await asyncio.to_thread(p.store.claim_job, job_id, p.owner, p.lease_s, None, p.max_attempts)
        if job is None:
            return None
        stop = self._stops[job_id] = threading.Event()
        keeper = asyncio.create_task(self._keep_lease(job_id, stop, heartbeat), name=f"lease-{job_id}")
        try:
            return await self._run(job, stop)
        except Stopped:
            log.info("job %s stopped on %s (cancelled or taken over)", job_id, p.owner)
            return None
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self._stops.pop(job_id, None)
            shutil.rmtree(p.work_dir / job_id, ignore_errors=True)

    async def _keep_lease(
        self, job_id: str, stop: threading.Event, heartbeat: Callable[[], Awaitable[None]] | None
    ) -> None:
        p = self.parts
        interval = max(0.2, min(5.0, p.lease_s / 3))
        while not stop.is_set():
            await asyncio.sleep(interval)
            if not await asyncio.to_thread(p.store.renew_lease, job_id, p.owner, p.lease_s):
                stop.set()
                return
            if heartbeat is not None:
                try:
                    await heartbeat()
                except Exception as exc:  # noqa: BLE001 — the DB lease is what fences; the queue can lag
                    log.warning("queue heartbeat of job %s failed: %s", job_id, exc)

    async def _run(self, job: Job, stop: threading.Event) -> JobStatus:
        p = self.parts
        total = len(job.candidates)
        self.publish(Progress(job.job_id, JobStatus.RUNNING, job.fraction, f"started (attempt {job.attempts})"))
        if p.use_adapter is not None:
            await asyncio.to_thread(p.use_adapter, job.adapter_version)
        if job.attempts == 1 and job.vary_prompt and p.variator.base_url:
            job = await self._llm_prompts(job)
        for c in job.candidates:
            if c.status == CandidateStatus.SUCCEEDED:
                continue
            if stop.is_set():
                raise Stopped
            if not await asyncio.to_thread(p.store.start_candidate, job.job_id, c.index, p.owner):
                raise Stopped
            done = await self._candidate(job, c, stop)
            if not await asyncio.to_thread(p.store.finish_candidate, done, p.owner, self._events(job, done)):
                raise Stopped
            if p.on_candidate is not None:
                p.on_candidate(job, done)
            c.status = done.status
            message = f"candidate {c.index + 1}/{total} " + (
                "ready" if done.status == CandidateStatus.SUCCEEDED else "failed"
            )
            self.publish(
                Progress(
                    job.job_id, JobStatus.RUNNING, job.fraction, message, c.index, c.candidate_id,
                    candidate=done, error=done.error,
                )
            )  # fmt: skip
        stored = await asyncio.to_thread(p.store.require_job, job.job_id)
        ok = [c for c in stored.candidates if c.status == CandidateStatus.SUCCEEDED]
        failed = [c for c in stored.candidates if c.status == CandidateStatus.FAILED]
        status = JobStatus.SUCCEEDED if ok else JobStatus.FAILED
        error = "" if ok else (failed[0].error if failed else "no candidate was generated")
        if not await asyncio.to_thread(p.store.finish_job, job.job_id, p.owner, status, error):
            raise Stopped
        self.publish(Progress(job.job_id, status, 1.0, f"{len(ok)}/{total} candidates ready", error=error))
        return status

    def _events(self, job: Job, c: Candidate) -> list[Any]:
        return [events.video_generated(job, c)] if c.status == CandidateStatus.SUCCEEDED else []

    async def _llm_prompts(self, job: Job) -> Job:
        variations = await self.parts.variator.variations(job.params.prompt, len(job.candidates))
        if variations.source != "llm":
            return job
        changed = await asyncio.to_thread(
            self.parts.store.set_prompts, job.job_id, self.parts.owner, variations.prompts
        )
        if not changed:
            raise Stopped
        return await asyncio.to_thread(self.parts.store.require_job, job.job_id)

    async def _candidate(self, job: Job, c: Candidate, stop: threading.Event) -> Candidate:
        """Generate, encode, store and measure one candidate; a failure is recorded on the candidate."""
        p = self.parts
        loop = asyncio.get_running_loop()
        total = len(job.candidates)
        params: Params = replace(job.params, prompt=c.prompt, seed=c.seed)

        def on_step(step: int, steps: int) -> None:
            if stop.is_set():
                raise Stopped
            fraction = job.fraction + step / steps / total  # the candidates finished so far, and this one's part
            update = Progress(
                job.job_id, JobStatus.RUNNING, fraction, f"candidate {c.index + 1}/{total}: step {step}/{steps}",
                c.index, c.candidate_id, step, steps,
            )  # fmt: skip
            loop.call_soon_threadsafe(self.publish, update)

        started = time.perf_counter()
        try:
            video = await asyncio.to_thread(p.engine.generate, params, on_step)
            uris = await asyncio.to_thread(self._store_media, job.job_id, c.candidate_id, video)
            quality = await asyncio.to_thread(p.measure, video.frames, c.prompt)
        except Stopped:
            raise
        except Exception as exc:
            log.exception("candidate %s of job %s failed", c.index, job.job_id)
            return replace(c, status=CandidateStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:1000])
        height, width = video.frames.shape[1:3]
        return replace(
            c, status=CandidateStatus.SUCCEEDED, video_url=uris[0], thumbnail_url=uris[1], frames=len(video.frames),
            fps=video.fps, width=int(width), height=int(height), generation_seconds=time.perf_counter() - started,
            quality=quality, error="",
        )  # fmt: skip

    def _store_media(self, job_id: str, candidate_id: str, video: Video) -> tuple[str, str]:
        p = self.parts
        local = p.work_dir / job_id
        mp4 = write_mp4(video, local / f"{candidate_id}.mp4")
        jpg = poster(video, local / f"{candidate_id}.jpg")
        video_uri = p.storage.put_file(mp4, f"videos/{job_id}/{candidate_id}.mp4", content_type="video/mp4")
        poster_uri = p.storage.put_file(jpg, f"videos/{job_id}/{candidate_id}.jpg", content_type="image/jpeg")
        return video_uri, poster_uri
