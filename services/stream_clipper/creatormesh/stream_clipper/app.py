"""The stream_clipper service on the kit: VOD jobs (resumed after a restart), clips, TikTok publishing,
Kick monitoring; publishes `clips.created`, consumes `content.scored` for the publish decision."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from creatormesh.common import topics
from creatormesh.common.bus import Event, Handler
from creatormesh.common.server import Runtime, Service, Servicer
from creatormesh.common.settings import load
from creatormesh.common.storage import storage_from
from creatormesh.events.v1 import clips_pb2
from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.live import LiveClipper
from creatormesh.stream_clipper.pipeline import JobRunner, Parts, Progress
from creatormesh.stream_clipper.publishing import ClipPublisher
from creatormesh.stream_clipper.records import Channel, Clip, Job, Options, Stage
from creatormesh.stream_clipper.render import RenderConfig
from creatormesh.stream_clipper.servicer import StreamClipperServicer, score_pb, words_pb
from creatormesh.stream_clipper.settings import StreamClipperSettings
from creatormesh.stream_clipper.store import ClipStore
from creatormesh.stream_clipper.stt import build_engine
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb
from creatormesh.stream_clipper.v1 import stream_clipper_pb2_grpc

log = logging.getLogger("creatormesh.stream_clipper")
FULL_NAME = pb.DESCRIPTOR.services_by_name["StreamClipperService"].full_name


@dataclass(frozen=True)
class JobProgress:
    """One update of a job for ProcessVod."""

    job_id: str
    stage: Stage
    fraction: float
    message: str
    error: str = ""
    clip: Clip | None = None


def stream_id_for(source_uri: str) -> str:
    stem = Path(source_uri.split("?", maxsplit=1)[0].rstrip("/")).stem[:40] or "vod"
    return f"vod-{stem}-{hashlib.sha1(source_uri.encode()).hexdigest()[:8]}"


class StreamClipperService(Service):
    name = "stream_clipper"

    def __init__(self, runtime: Runtime, settings: StreamClipperSettings | None = None) -> None:
        super().__init__(runtime)
        self.settings = settings or load(StreamClipperSettings)
        self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.store: ClipStore
        self.runner: JobRunner
        self.parts: Parts
        self.publisher: ClipPublisher
        self.live: LiveClipper | None = None
        self._watchers: dict[str, list[asyncio.Queue[JobProgress]]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore
        self._background: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def servicers(self) -> Sequence[Servicer]:
        return [
            Servicer(
                stream_clipper_pb2_grpc.add_StreamClipperServiceServicer_to_server,
                StreamClipperServicer(self),
                FULL_NAME,
            )
        ]

    async def load(self) -> None:
        s = self.settings
        self.store = ClipStore(s.database_url)
        await asyncio.to_thread(self.store.create_schema)
        engine = await asyncio.to_thread(
            build_engine,
            s.stt_engine,
            s.whisper_model_dir or None,
            **({"device": s.whisper_device, "compute_type": s.whisper_compute_type} if s.whisper_model_dir else {}),
        )
        work = Path(s.work_dir)
        self.parts = Parts(
            engine=engine,
            keywords=KeywordRules.load(s.keywords_path or None),
            storage=storage_from(s),
            work_dir=work,
            render=RenderConfig(
                font_dir=Path(s.fonts_dir) if s.fonts_dir else None,
                logo=Path(s.logo_path) if s.logo_path else None,
                timeout_s=s.ffmpeg_timeout_seconds,
            ),
            scene_threshold=s.scene_threshold,
            ffmpeg_timeout_s=s.ffmpeg_timeout_seconds,
        )
        self.runner = JobRunner(self.parts, self.store)
        self.publisher = ClipPublisher(s, self.store, self.parts.storage, self.runtime.settings.redis_url, work)
        self._slots = asyncio.Semaphore(s.max_concurrent_jobs)
        if s.kick_client_id:
            self.live = LiveClipper(s, self.parts, self.store, self.runtime.settings.redis_url, self._clip_ready)
            await self.live.start()
        self._background.append(asyncio.create_task(self._resume_loop(), name="clipper-resume"))
        self._background.append(asyncio.create_task(self._outbox_loop(), name="clipper-outbox"))
        log.info("stream_clipper loaded: stt %s, storage %s", engine.name, s.storage)

    async def close(self) -> None:
        self._stop.set()
        if self.live is not None:
            await self.live.stop()
        tasks = [*self._background, *self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job_id in list(self._running):
            await asyncio.to_thread(self.store.release, job_id, self.owner)
        await self.publisher.close()
        self.store.close()

    # --- jobs ----------------------------------------------------------------
    async def process_vod(
        self, *, request_id: str, source_uri: str, streamer: str, stream_id: str, dry_run: bool, options: Options
    ) -> AsyncIterator[JobProgress]:
        """Start (or attach to) the job of ``request_id`` and yield its progress until it is DONE or FAILED."""
        job = Job(
            job_id=uuid.uuid4().hex, request_id=request_id, source_uri=source_uri, streamer=streamer,
            stream_id=stream_id or stream_id_for(source_uri), dry_run=dry_run, options=options,
        )  # fmt: skip
        stored, created = await asyncio.to_thread(
            self.store.create_job, job, self.owner, self.settings.job_lease_seconds
        )
        queue: asyncio.Queue[JobProgress] = asyncio.Queue()
        self._watchers.setdefault(stored.job_id, []).append(queue)
        try:
            yield JobProgress(stored.job_id, stored.stage, stored.fraction, stored.message, stored.error)
            if stored.stage.terminal:
                return
            if created:
                self._start(stored)
            elif stored.job_id not in self._running:
                async for update in self._follow(stored):
                    yield update
                return
            while True:
                update = await queue.get()
                yield update
                if update.stage.terminal:
                    return
        finally:
            self._watchers[stored.job_id].remove(queue)

    async def _follow(self, job: Job) -> AsyncIterator[JobProgress]:
        """Progress of a job running on another replica (or waiting to be resumed), read from the store."""
        last = (job.stage, job.fraction, job.message)
        while not self._stop.is_set():
            await asyncio.sleep(1.0)
            if job.job_id in self._running:  # resumed here meanwhile
                queue: asyncio.Queue[JobProgress] = asyncio.Queue()
                self._watchers[job.job_id].append(queue)
                try:
                    while (update := await queue.get()).stage.terminal is False:
                        yield update
                    yield update
                finally:
                    self._watchers[job.job_id].remove(queue)
                return
            current = await asyncio.to_thread(self.store.get_job, job.job_id)
            if current is None:
                return
            state = (current.stage, current.fraction, current.message)
            if state != last:
                last = state
                yield JobProgress(current.job_id, current.stage, current.fraction, current.message, current.error)
            if current.stage.terminal:
                return

    def _start(self, job: Job) -> None:
        self._running[job.job_id] = asyncio.create_task(self._run(job), name=f"clipper-job-{job.job_id}")

    async def _run(self, job: Job) -> None:
        renew = asyncio.create_task(self._renew(job.job_id))
        try:
            async with self._slots:
                await self.runner.run(job, lambda p: self._report(job, p))
        finally:
            renew.cancel()
            self._running.pop(job.job_id, None)

    async def _renew(self, job_id: str) -> None:
        lease = self.settings.job_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            await asyncio.to_thread(self.store.renew_lease, job_id, self.owner, lease)

    async def _report(self, job: Job, p: Progress) -> None:
        update = JobProgress(job.job_id, p.stage, p.fraction, p.message, job.error if p.stage == Stage.FAILED else "")
        if p.clip is not None:
            update = JobProgress(job.job_id, p.stage, p.fraction, p.message, clip=p.clip)
            if not job.dry_run:
                await self._clip_ready(p.clip, publish=job.options.publish)
        for queue in self._watchers.get(job.job_id, []):
            queue.put_nowait(update)

    async def _resume_loop(self) -> None:
        """Claim jobs whose worker died (expired lease) and run them here; at start and then periodically."""
        lease = self.settings.job_lease_seconds
        while not self._stop.is_set():
            for job in await asyncio.to_thread(self.store.claim_jobs, self.owner, lease):
                log.info("resuming job %s at %s", job.job_id, job.stage.name)
                self._start(job)
            await asyncio.sleep(lease / 2)

    async def get_job(self, job_id: str) -> Job | None:
        return await asyncio.to_thread(self.store.get_job, job_id)

    async def get_clip(self, clip_id: str) -> Clip | None:
        return await asyncio.to_thread(self.store.get_clip, clip_id)

    async def list_clips(self, streamer: str, stream_id: str, offset: int, limit: int) -> list[Clip]:
        return await asyncio.to_thread(self.store.list_clips, streamer, stream_id, offset=offset, limit=limit)

    # --- clips.created (an outbox: a clip is announced once it is confirmed sent) -------------------------
    async def _clip_ready(self, clip: Clip, publish: bool = False) -> None:
        if publish:
            self.publisher.wanted.add(clip.clip_id)
        await self._announce()

    async def _announce(self) -> None:
        bus = self.runtime.bus
        if bus is None:
            return
        for clip in await asyncio.to_thread(self.store.clips_to_announce):
            await bus.publish(
                topics.CLIPS_CREATED, clip_created(clip), subject=clip.clip_id, event_id=f"clip:{clip.clip_id}"
            )
            await asyncio.to_thread(self.store.mark_announced, clip.clip_id)

    async def _outbox_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a broker outage: retried next round
                await self._announce()
            await asyncio.sleep(10.0)

    # --- publishing ----------------------------------------------------------
    async def publish_clip(
        self, clip_id: str, *, strategy: str, wait: bool, max_wait_s: float, caption: str, ignore_threshold: bool
    ) -> tuple[Clip, bool]:
        return await self.publisher.publish(
            clip_id,
            strategy=strategy,
            wait=wait,
            max_wait_s=max_wait_s,
            caption=caption,
            ignore_threshold=ignore_threshold,
        )

    def handlers(self) -> dict[str, Handler]:
        return {topics.CONTENT_SCORED: self.on_scored}

    async def on_scored(self, event: Event) -> None:
        """Record a clip's viral score; auto-publish it when it clears the threshold."""
        p = event.payload
        clip = await asyncio.to_thread(self.store.set_viral_score, p.content_id, p.v)
        if clip is not None:
            await self.publisher.on_scored(clip, auto=self.settings.auto_publish)

    # --- monitoring ----------------------------------------------------------
    def _live(self) -> LiveClipper:
        from creatormesh.common.errors import FailedPrecondition

        if self.live is None:
            raise FailedPrecondition("Kick monitoring is not configured (CREATORMESH_STREAM_CLIPPER_KICK_CLIENT_ID)")
        return self.live

    async def start_monitoring(self, slug: str, chunk_seconds: int, options: Options) -> tuple[Channel, bool]:
        return await self._live().add(slug, chunk_seconds, options)

    async def stop_monitoring(self, slug: str) -> bool:
        return await self._live().remove(slug)

    async def list_channels(self, offset: int, limit: int) -> list[Channel]:
        return await asyncio.to_thread(self.store.list_channels, offset=offset, limit=limit)


def clip_created(clip: Clip) -> clips_pb2.ClipCreated:
    msg = clips_pb2.ClipCreated(
        clip_id=clip.clip_id, job_id=clip.job_id, stream_id=clip.stream_id, streamer=clip.streamer,
        start_seconds=clip.start_s, end_seconds=clip.end_s, duration_seconds=clip.duration_s,
        transcript=clip.transcript, words=words_pb(clip.words), language=clip.language, score=score_pb(clip.score),
        source_media_uri=clip.source_media_uri, rendered_media_uri=clip.rendered_media_uri,
        thumbnail_uri=clip.thumbnail_uri,
    )  # fmt: skip
    if clip.created_at is not None:
        msg.created_at.FromDatetime(clip.created_at)
    if clip.stream_started_at is not None:
        msg.stream_started_at.FromDatetime(clip.stream_started_at)
    return msg
