"""The video_diffusion service on the kit: text-to-video jobs through a Redis Streams queue (crash-safe with DB
leases), five candidates per prompt, picks, LoRA adapters hot-loaded, events through an outbox, and the quality,
drift and queue metrics the canary analysis gates on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from google.protobuf import symbol_database

from creatormesh.common import topics
from creatormesh.common.bus import Event, Handler
from creatormesh.common.errors import NotFound, require
from creatormesh.common.server import Runtime, Service, Servicer
from creatormesh.common.settings import as_env, load
from creatormesh.common.storage import Storage, fetch_local, storage_from
from creatormesh.events.v1 import retrain_pb2, videos_pb2  # noqa: F401 — registers the event types
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb
from creatormesh.video_diffusion.v1 import video_diffusion_pb2_grpc

from . import convert, events, monitoring
from .builder import build_tiny
from .drift import PromptDrift
from .engine import Engine
from .limits import Params
from .prompts import PromptVariator, rewrites
from .quality import CLIPScorer, flicker
from .queue import JobQueue
from .records import BASE_VERSION, Adapter, Candidate, CandidateStatus, Job, JobStatus, PickResult
from .settings import VideoDiffusionSettings
from .store import JobStore, migrate
from .trainer import TrainingRuns, train_command
from .worker import JobRunner, Parts, Progress

log = logging.getLogger("creatormesh.video_diffusion")
FULL_NAME = pb.DESCRIPTOR.services_by_name["VideoDiffusionService"].full_name
SEED_RANGE = 2**32
PROGRESS_MAXLEN = 10_000
"""Progress entries kept per job (steps x candidates + a few)."""
PROGRESS_TTL_SECONDS = 86_400
DRIFT_BACKLOG = 1000
"""Prompts waiting to be embedded for the drift measure."""


def progress_json(p: Progress) -> str:
    data = asdict(p)
    if p.candidate is not None:
        data["candidate"]["status"] = int(p.candidate.status)
    data["status"] = int(p.status)
    return json.dumps(data)


def progress_from_json(raw: str | bytes) -> Progress:
    data = json.loads(raw)
    candidate = data.pop("candidate")
    if candidate is not None:
        candidate["status"] = CandidateStatus(candidate["status"])
        candidate = Candidate(**candidate)
    return Progress(**{**data, "status": JobStatus(data["status"]), "candidate": candidate})


class VideoDiffusionService(Service):
    name = "video_diffusion"

    def __init__(self, runtime: Runtime, settings: VideoDiffusionSettings | None = None) -> None:
        super().__init__(runtime)
        self.settings = settings or load(VideoDiffusionSettings)
        self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.store: JobStore
        self.engine: Engine
        self.storage: Storage
        self.queue: JobQueue
        self.runner: JobRunner
        self.training: TrainingRuns
        self.drift: PromptDrift | None = None
        self.variator: PromptVariator
        self.model_name = ""
        self._scorer: CLIPScorer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._progress: asyncio.Queue[Progress] = asyncio.Queue()
        # Prompts for the drift measure, embedded off the request path (dropped, not waited for, when it lags).
        self._prompts: asyncio.Queue[str] = asyncio.Queue(maxsize=DRIFT_BACKLOG)
        self._running: set[str] = set()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._drain_lock = asyncio.Lock()

    def servicers(self) -> Sequence[Servicer]:
        from .servicer import VideoDiffusionServicer

        return [
            Servicer(
                video_diffusion_pb2_grpc.add_VideoDiffusionServiceServicer_to_server,
                VideoDiffusionServicer(self),
                FULL_NAME,
            )
        ]

    def handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {topics.VIDEOS_REQUESTED: self.on_requested}
        if self.settings.trainer:
            handlers[topics.RETRAIN_REQUESTED] = self.on_retrain_requested
        return handlers

    # --- life cycle ---------------------------------------------------------------------------------------------
    async def load(self) -> None:
        s = self.settings
        model_dir = Path(s.model_dir)
        if s.build_tiny_model and not (model_dir / "model_index.json").exists():
            log.info("building a tiny random Wan pipeline at %s (build_tiny_model is on)", model_dir)
            await asyncio.to_thread(build_tiny, model_dir)
        await asyncio.to_thread(migrate, s.database_url)
        self.store = JobStore(s.database_url)
        self.engine = await asyncio.to_thread(
            Engine.load,
            model_dir,
            device=s.device,
            dtype=s.dtype,
            cpu_offload=s.cpu_offload,
            vae_tiling=s.vae_tiling,
            vae_slicing=s.vae_slicing,
        )
        self.model_name = s.model_name or model_dir.name
        if s.warm_up:
            seconds = await asyncio.to_thread(self.engine.warm_up)
            log.info("pipeline warmed up in %.2f s", seconds)
        self.storage = storage_from(s)
        if s.clip_model_dir:
            self._scorer = await asyncio.to_thread(CLIPScorer.load, Path(s.clip_model_dir), device=s.device)
        self.drift = PromptDrift(
            reference_size=s.drift_reference_size,
            window_size=s.drift_window_size,
            min_count=min(20, s.drift_reference_size, s.drift_window_size),
        )
        self.variator = PromptVariator(s.llm_base_url, s.llm_model, s.llm_api_key, s.llm_timeout_seconds)
        self.queue = JobQueue(
            self.runtime.redis(),
            key=s.queue_key,
            consumer=self.owner,
            lease_ms=int(s.job_lease_seconds * 1000),
            max_deliveries=s.max_deliveries,
        )
        await self.queue.ensure_group()
        parts = Parts(
            store=self.store,
            engine=self.engine,
            storage=self.storage,
            work_dir=Path(s.work_dir),
            owner=self.owner,
            lease_s=s.job_lease_seconds,
            measure=self.measure,
            max_attempts=s.max_deliveries,
            variator=self.variator,
            use_adapter=self.use_adapter,
            on_candidate=self._observe,
        )
        self.runner = JobRunner(parts, self._progress.put_nowait)
        active = await asyncio.to_thread(self.store.active_version)
        await asyncio.to_thread(self.use_adapter, active)
        self._tasks.append(asyncio.create_task(self._publish_progress(), name="vd-progress"))
        self._tasks.append(asyncio.create_task(self._track_drift(), name="vd-drift"))
        self._tasks.append(asyncio.create_task(self._outbox_loop(), name="vd-outbox"))
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="vd-sweep"))
        for i in range(s.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"vd-worker-{i}"))
        if s.trainer:
            training_queue = JobQueue(
                self.runtime.redis(), key=s.trainer_queue_key, group="trainers", consumer=self.owner,
                lease_ms=int(s.job_lease_seconds * 1000), max_deliveries=s.max_deliveries,
            )  # fmt: skip
            await training_queue.ensure_group()
            self.training = TrainingRuns(
                training_queue, train_command(s.trainer_args, s.trainer_activate), as_env(s),
                Path(s.work_dir) / "training-logs", heartbeat_s=s.job_lease_seconds / 3,
            )  # fmt: skip
            self._tasks.append(asyncio.create_task(self.training.run_forever(self._stop), name="vd-trainer"))
        log.info(
            "video_diffusion loaded: %s (%s) on %s, %d worker(s)",
            self.model_name,
            self.engine.kind,
            s.device,
            s.workers,
        )

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for job_id in list(self._running):  # hand unfinished jobs back at once
            if await asyncio.to_thread(self.store.release, job_id, self.owner):
                with contextlib.suppress(Exception):
                    await self.queue.enqueue(job_id)
        await self.variator.aclose()
        self.store.close()

    # --- jobs ---------------------------------------------------------------------------------------------------
    async def submit(
        self,
        *,
        request_id: str,
        user_id: str,
        params: Params,
        num_candidates: int,
        vary_prompt: bool,
        adapter_version: str | None,
    ) -> tuple[Job, bool]:
        """Queue a job (or return the one of ``request_id``); NotFound for an unregistered adapter version."""
        version = adapter_version if adapter_version is not None else await asyncio.to_thread(self.store.active_version)
        if version != BASE_VERSION:
            await asyncio.to_thread(self.store.require_adapter, version)
        job_id = uuid.uuid4().hex
        prompts = rewrites(params.prompt, num_candidates) if vary_prompt else [params.prompt] * num_candidates
        job = Job(
            job_id=job_id, request_id=request_id, user_id=user_id, params=params, num_candidates=num_candidates,
            vary_prompt=vary_prompt, model=self.model_name, adapter_version=version, created_at=time.time(),
        )  # fmt: skip
        job.candidates = [
            Candidate(f"{job_id}-{i}", job_id, i, prompts[i], (params.seed + i) % SEED_RANGE)
            for i in range(num_candidates)
        ]
        stored, replayed = await asyncio.to_thread(self.store.create_job, job)
        if not replayed:
            await self.queue.enqueue(stored.job_id)
            monitoring.JOBS.labels("submitted").inc()
            with contextlib.suppress(asyncio.QueueFull):
                self._prompts.put_nowait(params.prompt)
        return stored, replayed

    async def _track_drift(self) -> None:
        """Embed submitted prompts into the drift windows and export the drift (MiniLM on a worker thread)."""
        while True:
            prompt = await self._prompts.get()
            if self.drift is None:
                continue
            try:
                score = await asyncio.to_thread(self._track_prompt, self.drift, prompt)
            except Exception as exc:  # noqa: BLE001 — a metric must not stop the service
                log.warning("prompt drift not updated: %s", exc)
                continue
            if score is not None:
                monitoring.DRIFT.set(score)

    @staticmethod
    def _track_prompt(drift: PromptDrift, prompt: str) -> float | None:
        drift.add(prompt)
        return drift.score()

    async def get_job(self, job_id: str) -> Job:
        return await asyncio.to_thread(self.store.require_job, job_id)

    async def cancel(self, job_id: str) -> Job:
        job = await asyncio.to_thread(self.store.cancel_job, job_id)
        self.runner.stop(job_id)
        if job.status == JobStatus.CANCELLED:
            self._progress.put_nowait(Progress(job_id, JobStatus.CANCELLED, 1.0, "cancelled"))
        return job

    async def watch(self, job_id: str) -> AsyncIterator[Progress]:
        """The job's progress until it is terminal. Updates come from whichever replica runs the job through a Redis
        stream per job, read from its start (so a watcher that arrives late still sees every step), with a database
        check every second so a lost update cannot hang the stream. A finished job gives one message."""
        job = await self.get_job(job_id)
        yield Progress(job_id, job.status, job.fraction, f"job is {job.status.name.lower()}", error=job.error)
        redis = self.runtime.redis()
        key, last, fraction = self._progress_key(job_id), "0", job.fraction
        while not job.status.terminal:
            reply = await redis.xread({key: last}, count=100, block=1000)
            if not reply:
                job = await self.get_job(job_id)
                if job.status.terminal:
                    yield Progress(job_id, job.status, 1.0, f"job is {job.status.name.lower()}", error=job.error)
                continue
            for entry_id, fields in reply[0][1]:
                last = entry_id
                update = progress_from_json(fields[b"p"])
                fraction = max(fraction, update.fraction)
                yield replace(update, fraction=fraction)
                if update.status.terminal:
                    return

    def _progress_key(self, job_id: str) -> str:
        return f"{self.settings.queue_key}:progress:{job_id}"

    async def _publish_progress(self) -> None:
        redis = self.runtime.redis()
        while True:
            update = await self._progress.get()
            key = self._progress_key(update.job_id)
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, {"p": progress_json(update)}, maxlen=PROGRESS_MAXLEN, approximate=True)
                    pipe.expire(key, PROGRESS_TTL_SECONDS)
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 — progress is best effort; the job state is in the database
                log.warning("progress of job %s not published: %s", update.job_id, exc)

    async def _work(self) -> None:
        """One worker: take a delivery, run its job, acknowledge it (also when there was nothing to do)."""
        while (delivery := await self.queue.take(self._stop)) is not None:
            job_id = delivery.job_id
            self._running.add(job_id)
            started = time.perf_counter()
            try:
                status = await self.runner.run(job_id, heartbeat=functools.partial(self.queue.heartbeat, delivery))
            except Exception:
                log.exception("job %s failed in the worker; it will be redelivered", job_id)
                monitoring.ERRORS.labels("worker").inc()
                continue
            finally:
                self._running.discard(job_id)
            if status is not None:
                monitoring.JOBS.labels(status.name.lower()).inc()
                monitoring.JOB_SECONDS.observe(time.perf_counter() - started)
            await self.queue.ack(delivery)

    async def _sweep_loop(self) -> None:
        """Re-enqueue jobs that have sat queued for a lease without a worker, or whose worker's lease expired (their
        queue entry may have been lost with a Redis restart). Duplicate entries are harmless: a claim fails."""
        interval = self.settings.job_lease_seconds
        while not self._stop.is_set():
            try:
                stale = await asyncio.to_thread(self.store.unfinished_jobs, time.time(), interval)
                for job_id in stale:
                    await self.queue.enqueue(job_id)
                depth = await self.queue.depth()
                monitoring.QUEUE_DEPTH.labels("waiting").set(depth.waiting)
                monitoring.QUEUE_DEPTH.labels("pending").set(depth.pending)
                monitoring.QUEUE_DEPTH.labels("dead").set(depth.dead)
            except Exception as exc:  # noqa: BLE001 — keep sweeping
                log.warning("sweep failed: %s", exc)
            await asyncio.sleep(min(interval, 10.0))

    # --- quality ------------------------------------------------------------------------------------------------
    def measure(self, frames: Any, prompt: str) -> dict[str, float]:
        if self._scorer is not None:
            metrics = self._scorer.measure(frames, prompt)
            values = {k: v for k, v in asdict(metrics).items() if v is not None}
        else:
            value = flicker(frames)
            values = {} if value is None else {"flicker": value}
        return values

    def _observe(self, job: Job, c: Candidate) -> None:
        self._wake.set()
        if c.status != CandidateStatus.SUCCEEDED:
            monitoring.ERRORS.labels("candidate").inc()
            return
        monitoring.CANDIDATE_SECONDS.observe(c.generation_seconds)
        for name, value in c.quality.items():
            monitoring.QUALITY.labels(name).observe(value)

    # --- picks and adapters -------------------------------------------------------------------------------------
    async def select(self, job_id: str, candidate_id: str, user_id: str) -> PickResult:
        job = await self.get_job(job_id)
        active = await asyncio.to_thread(self.store.active_version)

        def outbox(result: PickResult) -> list[Any]:
            out = [events.preference_recorded(job, result)]
            if result.retrain_triggered:
                out.append(events.retrain_requested(result, active))
            return out

        result = await asyncio.to_thread(
            self.store.record_pick, job_id, candidate_id, user_id, self.settings.retrain_every_picks, outbox
        )
        if not result.already_recorded:
            monitoring.PICKS.inc()
            if result.retrain_triggered:
                monitoring.RETRAINS.inc()
            self._wake.set()
        return result

    async def list_adapters(self, offset: int, limit: int) -> tuple[list[Adapter], str]:
        adapters = await asyncio.to_thread(self.store.list_adapters, offset, limit)
        return adapters, await asyncio.to_thread(self.store.active_version)

    async def activate(self, version: str) -> tuple[Adapter, str]:
        """Load ``version`` into the pipeline now and make it the default for new jobs; (adapter, previous)."""
        adapter = (
            self._base_adapter()
            if version == BASE_VERSION
            else await asyncio.to_thread(self.store.require_adapter, version)
        )
        await asyncio.to_thread(self.use_adapter, version)
        previous = await asyncio.to_thread(self.store.set_active, version)
        return (
            adapter if version == BASE_VERSION else await asyncio.to_thread(self.store.require_adapter, version)
        ), previous

    def _base_adapter(self) -> Adapter:
        return Adapter(BASE_VERSION, self.model_name, "", "", 0, {}, 0, 0.0, True)

    def use_adapter(self, version: str) -> None:
        """Make the pipeline generate with ``version`` (blocking; waits for a running generation)."""
        if version == self.engine.adapter_version:
            return
        if version == BASE_VERSION:
            self.engine.use_adapter(BASE_VERSION, None)
            return
        adapter = self.store.require_adapter(version)
        weights = fetch_local(adapter.uri, Path(self.settings.adapters_dir), self.storage)
        self.engine.use_adapter(version, weights)

    # --- events -------------------------------------------------------------------------------------------------
    async def on_requested(self, event: Event) -> None:
        """``videos.requested``: the asynchronous SubmitGeneration (invalid requests go to the DLQ)."""
        msg: Any = event.payload
        require(msg.request_id != "", "request_id", "is required")
        convert.require_id(msg.request_id, "request_id")
        convert.require_id(msg.user_id, "user_id", 256)
        params, count, vary = convert.generation(
            msg.params, msg.HasField("params"), self.engine.limits, self.settings.default_negative_prompt
        )
        version = msg.adapter_version if msg.HasField("adapter_version") else None
        try:
            await self.submit(
                request_id=msg.request_id, user_id=msg.user_id, params=params, num_candidates=count,
                vary_prompt=vary, adapter_version=version,
            )  # fmt: skip
        except NotFound as exc:
            from creatormesh.common.errors import InvalidArgument

            raise InvalidArgument("adapter_version", str(exc)) from exc

    async def on_retrain_requested(self, event: Event) -> None:
        """``retrain.requested``: queue a training run of this service's LoRA adapter (other models' requests are
        not ours and are skipped; invalid ones go to the DLQ)."""
        msg: Any = event.payload
        if msg.model != events.RETRAIN_MODEL:
            log.debug("retrain.requested for %r: not this trainer's model", msg.model)
            return
        require(msg.trigger != retrain_pb2.RETRAIN_TRIGGER_UNSPECIFIED, "trigger", "is required")
        require(
            msg.dataset_uri in ("", events.PICKS_DATASET), "dataset_uri",
            f"{events.RETRAIN_MODEL} trains on the service's picks ({events.PICKS_DATASET!r}), got {msg.dataset_uri!r}",
        )  # fmt: skip
        await self.training.request(event.event_id, msg.reason, msg.base_version)

    async def _outbox_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.drain_outbox()
            except Exception as exc:  # noqa: BLE001 — a broker outage: retried next round
                log.warning("outbox not drained: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)
            self._wake.clear()

    async def drain_outbox(self) -> int:
        """Publish pending events (oldest first) and mark them sent; the number sent."""
        bus = self.runtime.bus
        if bus is None:
            return 0
        async with self._drain_lock:  # the loop and an explicit call must not send the same rows twice
            return await self._drain(bus)

    async def _drain(self, bus: Any) -> int:
        pending = await asyncio.to_thread(self.store.pending_events)
        sent: list[str] = []
        try:
            for e in pending:
                message = symbol_database.Default().GetSymbol(e.message_type)()
                message.ParseFromString(e.payload)
                await bus.publish(e.topic, message, subject=e.subject, event_id=e.event_id)
                sent.append(e.event_id)
        finally:
            if sent:
                await asyncio.to_thread(self.store.mark_sent, sent)
        return len(sent)
