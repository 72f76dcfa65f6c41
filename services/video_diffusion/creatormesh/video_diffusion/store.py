"""Jobs, candidates, picks, adapters and the event outbox in a database (SQLAlchemy: PostgreSQL in production,
SQLite by default; the schema is made by Alembic migrations, see :func:`migrate`). Synchronous; the service calls
it from a worker thread.

A running job holds a lease (owner + expiry). Work is fenced by it: only the owner may record a candidate or finish
the job, so a worker that was presumed dead and comes back cannot overwrite what its successor did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from creatormesh.common.database import Database
from creatormesh.common.errors import FailedPrecondition, NotFound

from .limits import Params
from .records import (
    BASE_VERSION,
    Adapter,
    Candidate,
    CandidateStatus,
    Job,
    JobStatus,
    OutboxEvent,
    Pick,
    PickResult,
)

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "video_diffusion_alembic_version"
_PICKS_AT_LAST_RETRAIN = "picks_at_last_retrain"
_ACTIVE_ADAPTER = "active_adapter"


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "vd_jobs"
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[str] = mapped_column(String(256), index=True)
    status: Mapped[int] = mapped_column(Integer, index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    num_candidates: Mapped[int] = mapped_column(Integer)
    vary_prompt: Mapped[bool] = mapped_column(Boolean)
    model: Mapped[str] = mapped_column(String(256))
    adapter_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    generation_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    selected_candidate_id: Mapped[str] = mapped_column(String(96), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(128), default="")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)


class CandidateRow(Base):
    __tablename__ = "vd_candidates"
    __table_args__ = (UniqueConstraint("job_id", "idx"),)
    candidate_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("vd_jobs.job_id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int] = mapped_column(Integer)
    video_url: Mapped[str] = mapped_column(Text, default="")
    thumbnail_url: Mapped[str] = mapped_column(Text, default="")
    frames: Mapped[int] = mapped_column(Integer, default=0)
    fps: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    generation_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    quality: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")


class PickRow(Base):
    __tablename__ = "vd_picks"
    __table_args__ = (UniqueConstraint("job_id", "user_id"),)
    pick_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("vd_jobs.job_id", ondelete="CASCADE"))
    candidate_id: Mapped[str] = mapped_column(String(96))
    user_id: Mapped[str] = mapped_column(String(256))
    prompt: Mapped[str] = mapped_column(Text)
    video_url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class AdapterRow(Base):
    __tablename__ = "vd_adapters"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_model: Mapped[str] = mapped_column(String(256))
    uri: Mapped[str] = mapped_column(Text)
    parent_version: Mapped[str] = mapped_column(String(64))
    training_samples: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    rank: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class StateRow(Base):
    """Small named values: the pick count at the last retraining request, the active adapter version."""

    __tablename__ = "vd_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class OutboxRow(Base):
    __tablename__ = "vd_outbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(256))
    message_type: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``; a no-op when it is current)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def _job(row: JobRow, candidates: list[CandidateRow]) -> Job:
    job = Job(
        job_id=row.job_id,
        request_id=row.request_id,
        user_id=row.user_id,
        params=Params(**row.params),
        num_candidates=row.num_candidates,
        vary_prompt=row.vary_prompt,
        model=row.model,
        adapter_version=row.adapter_version,
        status=JobStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        generation_seconds=row.generation_seconds,
        error=row.error,
        selected_candidate_id=row.selected_candidate_id,
        attempts=row.attempts,
        owner=row.owner,
        lease_until=row.lease_until,
    )
    job.candidates = [_candidate(c, row.selected_candidate_id) for c in sorted(candidates, key=lambda c: c.idx)]
    return job


def _candidate(row: CandidateRow, selected: str) -> Candidate:
    return Candidate(
        candidate_id=row.candidate_id,
        job_id=row.job_id,
        index=row.idx,
        prompt=row.prompt,
        seed=row.seed,
        status=CandidateStatus(row.status),
        video_url=row.video_url,
        thumbnail_url=row.thumbnail_url,
        frames=row.frames,
        fps=row.fps,
        width=row.width,
        height=row.height,
        generation_seconds=row.generation_seconds,
        quality=dict(row.quality or {}),
        error=row.error,
        selected=row.candidate_id == selected,
    )


def _adapter(row: AdapterRow, active: str) -> Adapter:
    return Adapter(
        version=row.version,
        base_model=row.base_model,
        uri=row.uri,
        parent_version=row.parent_version,
        training_samples=row.training_samples,
        metrics=dict(row.metrics or {}),
        rank=row.rank,
        created_at=row.created_at,
        active=row.version == active,
    )


def _changed(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


class JobStore(Database):
    """The service's state. Call :func:`migrate` on the URL first (the service does it at start)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, serialise_sqlite=True)

    # --- jobs ----------------------------------------------------------------------------------------------------
    def create_job(self, job: Job, events: list[OutboxEvent] | None = None) -> tuple[Job, bool]:
        """Insert ``job`` with its candidates; (stored job, replayed). A known request_id returns that job."""
        try:
            with self.session() as s:
                s.add(
                    JobRow(
                        job_id=job.job_id,
                        request_id=job.request_id,
                        user_id=job.user_id,
                        status=int(job.status),
                        params=asdict(job.params),
                        num_candidates=job.num_candidates,
                        vary_prompt=job.vary_prompt,
                        model=job.model,
                        adapter_version=job.adapter_version,
                        created_at=job.created_at,
                    )
                )
                s.flush()
                for c in job.candidates:
                    s.add(
                        CandidateRow(
                            candidate_id=c.candidate_id,
                            job_id=job.job_id,
                            idx=c.index,
                            prompt=c.prompt,
                            seed=c.seed,
                            status=int(c.status),
                            quality={},
                        )
                    )
                self._outbox(s, events or [])
        except IntegrityError:
            with self.session() as s:
                job_id = s.scalar(select(JobRow.job_id).where(JobRow.request_id == job.request_id))
            if job_id is None:
                raise
            return self.require_job(job_id), True
        return self.require_job(job.job_id), False

    def get_job(self, job_id: str) -> Job | None:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return None
            candidates = list(s.scalars(select(CandidateRow).where(CandidateRow.job_id == job_id)))
            return _job(row, candidates)

    def require_job(self, job_id: str) -> Job:
        job = self.get_job(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job

    def claim_job(
        self, job_id: str, owner: str, lease_s: float, now: float | None = None, max_attempts: int | None = None
    ) -> Job | None:
        """Take a queued job, or a running one whose lease expired (its worker died); None when it is finished,
        cancelled, unknown or held by a live worker. Counts an attempt. A job already started ``max_attempts`` times
        (its workers keep dying on it) is failed instead, so a poison job cannot loop forever."""
        now = time.time() if now is None else now
        with self.session() as s:
            claimable = or_(
                JobRow.status == int(JobStatus.QUEUED),
                (JobRow.status == int(JobStatus.RUNNING)) & (JobRow.lease_until < now),
            )
            if max_attempts is not None:
                gave_up = s.execute(
                    update(JobRow)
                    .where(JobRow.job_id == job_id, claimable, JobRow.attempts >= max_attempts)
                    .values(
                        status=int(JobStatus.FAILED),
                        error=f"gave up after {max_attempts} attempts (workers died or failed on this job)",
                        finished_at=now,
                        owner="",
                        lease_until=0.0,
                    )
                )
                if _changed(gave_up):
                    self._cancel_open_candidates(s, job_id)
                    return None
            taken = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, claimable)
                .values(
                    status=int(JobStatus.RUNNING),
                    owner=owner,
                    lease_until=now + lease_s,
                    attempts=JobRow.attempts + 1,
                    started_at=func.coalesce(JobRow.started_at, now),
                )
            )
            if _changed(taken) != 1:
                return None
            s.execute(
                update(CandidateRow)
                .where(CandidateRow.job_id == job_id, CandidateRow.status == int(CandidateStatus.RUNNING))
                .values(status=int(CandidateStatus.PENDING))
            )
        return self.get_job(job_id)

    def renew_lease(self, job_id: str, owner: str, lease_s: float, now: float | None = None) -> bool:
        """Extend the owner's lease; False when the job is no longer its to run (cancelled, or taken over)."""
        now = time.time() if now is None else now
        with self.session() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.owner == owner, JobRow.status == int(JobStatus.RUNNING))
                .values(lease_until=now + lease_s)
            )
            return _changed(result) == 1

    def set_prompts(self, job_id: str, owner: str, prompts: list[str]) -> bool:
        """Replace the prompts of the owner's pending candidates (by index; LLM rewrites); False if not its job."""
        with self.session() as s:
            if not self._owns(s, job_id, owner):
                return False
            for index, prompt in enumerate(prompts):
                s.execute(
                    update(CandidateRow)
                    .where(
                        CandidateRow.job_id == job_id,
                        CandidateRow.idx == index,
                        CandidateRow.status == int(CandidateStatus.PENDING),
                    )
                    .values(prompt=prompt)
                )
            return True

    def start_candidate(self, job_id: str, index: int, owner: str) -> bool:
        with self.session() as s:
            if not self._owns(s, job_id, owner):
                return False
            s.execute(
                update(CandidateRow)
                .where(CandidateRow.job_id == job_id, CandidateRow.idx == index)
                .values(status=int(CandidateStatus.RUNNING), error="")
            )
            return True

    def finish_candidate(self, candidate: Candidate, owner: str, events: list[OutboxEvent] | None = None) -> bool:
        """Record a candidate's outcome (SUCCEEDED with its video, or FAILED with an error) and its events; False
        (nothing written) when ``owner`` no longer holds the job."""
        with self.session() as s:
            if not self._owns(s, candidate.job_id, owner):
                return False
            s.execute(
                update(CandidateRow)
                .where(CandidateRow.candidate_id == candidate.candidate_id)
                .values(
                    status=int(candidate.status),
                    video_url=candidate.video_url,
                    thumbnail_url=candidate.thumbnail_url,
                    frames=candidate.frames,
                    fps=candidate.fps,
                    width=candidate.width,
                    height=candidate.height,
                    generation_seconds=candidate.generation_seconds,
                    quality=dict(candidate.quality),
                    error=candidate.error,
                )
            )
            s.execute(
                update(JobRow)
                .where(JobRow.job_id == candidate.job_id)
                .values(generation_seconds=JobRow.generation_seconds + candidate.generation_seconds)
            )
            self._outbox(s, events or [])
            return True

    def finish_job(self, job_id: str, owner: str, status: JobStatus, error: str = "", now: float | None = None) -> bool:
        """Move the owner's running job to a terminal status; False when it is not the owner's any more."""
        if not status.terminal:
            raise ValueError(f"{status!r} is not terminal")
        now = time.time() if now is None else now
        with self.session() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.owner == owner, JobRow.status == int(JobStatus.RUNNING))
                .values(status=int(status), error=error, finished_at=now, lease_until=0.0)
            )
            if _changed(result) != 1:
                return False
            self._cancel_open_candidates(s, job_id)
            return True

    def release(self, job_id: str, owner: str) -> bool:
        """Give the owner's running job back to the queue state (graceful shutdown): another worker may take it at
        once instead of waiting for the lease to expire. Finished candidates are kept."""
        with self.session() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.owner == owner, JobRow.status == int(JobStatus.RUNNING))
                .values(status=int(JobStatus.QUEUED), owner="", lease_until=0.0)
            )
            if _changed(result) != 1:
                return False
            s.execute(
                update(CandidateRow)
                .where(CandidateRow.job_id == job_id, CandidateRow.status == int(CandidateStatus.RUNNING))
                .values(status=int(CandidateStatus.PENDING))
            )
            return True

    def cancel_job(self, job_id: str, now: float | None = None) -> Job:
        """Cancel a queued or running job (its worker notices at its next lease renewal); a finished job is
        returned unchanged. NotFound for an unknown id."""
        now = time.time() if now is None else now
        with self.session() as s:
            if s.get(JobRow, job_id) is None:
                raise NotFound("job", job_id)
            result = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.status.in_([int(JobStatus.QUEUED), int(JobStatus.RUNNING)]))
                .values(status=int(JobStatus.CANCELLED), finished_at=now, lease_until=0.0)
            )
            if _changed(result):
                self._cancel_open_candidates(s, job_id)
        return self.require_job(job_id)

    def unfinished_jobs(self, now: float | None = None, queued_for: float = 0.0) -> list[str]:
        """Ids of jobs a worker could take now (queued for at least ``queued_for`` seconds, or running with an
        expired lease), oldest first: the service re-enqueues them so a lost queue entry cannot strand a job."""
        now = time.time() if now is None else now
        with self.session() as s:
            rows = s.scalars(
                select(JobRow.job_id)
                .where(
                    or_(
                        (JobRow.status == int(JobStatus.QUEUED)) & (JobRow.created_at <= now - queued_for),
                        (JobRow.status == int(JobStatus.RUNNING)) & (JobRow.lease_until < now),
                    )
                )
                .order_by(JobRow.created_at)
            )
            return list(rows)

    def count_jobs(self, status: JobStatus) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(JobRow).where(JobRow.status == int(status))) or 0)

    @staticmethod
    def _owns(s: Session, job_id: str, owner: str) -> bool:
        row = s.get(JobRow, job_id, with_for_update=True)
        return row is not None and row.owner == owner and row.status == int(JobStatus.RUNNING)

    @staticmethod
    def _cancel_open_candidates(s: Session, job_id: str) -> None:
        s.execute(
            update(CandidateRow)
            .where(
                CandidateRow.job_id == job_id,
                CandidateRow.status.in_([int(CandidateStatus.PENDING), int(CandidateStatus.RUNNING)]),
            )
            .values(status=int(CandidateStatus.CANCELLED))
        )

    # --- picks ---------------------------------------------------------------------------------------------------
    def record_pick(
        self,
        job_id: str,
        candidate_id: str,
        user_id: str,
        threshold: int,
        events: Callable[[PickResult], list[OutboxEvent]] | None = None,
        now: float | None = None,
    ) -> PickResult:
        """Store a user's pick of a SUCCEEDED candidate; every ``threshold`` picks in total, the result says
        retrain_triggered. ``events(result) -> list[OutboxEvent]`` builds the events written in the same
        transaction. Repeating a pick is a no-op (already_recorded); another candidate of a picked job is
        FailedPrecondition."""
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        now = time.time() if now is None else now
        with self.session() as s:
            counter = self._state(s, _PICKS_AT_LAST_RETRAIN, "0", lock=True)
            job = s.get(JobRow, job_id)
            if job is None:
                raise NotFound("job", job_id)
            candidate = s.get(CandidateRow, candidate_id)
            if candidate is None or candidate.job_id != job_id:
                raise NotFound("candidate", candidate_id)
            existing = s.scalar(select(PickRow).where(PickRow.job_id == job_id, PickRow.user_id == user_id))
            total = int(s.scalar(select(func.count()).select_from(PickRow)) or 0)
            since = total - int(counter.value)
            if existing is not None:
                if existing.candidate_id != candidate_id:
                    raise FailedPrecondition(f"job {job_id} already has a pick by {user_id}: {existing.candidate_id}")
                return PickResult(_pick(existing), total, since, threshold, False, True)
            if candidate.status != int(CandidateStatus.SUCCEEDED):
                status = CandidateStatus(candidate.status).name
                raise FailedPrecondition(f"candidate {candidate_id} is {status}, only a SUCCEEDED one can be picked")
            row = PickRow(
                job_id=job_id,
                candidate_id=candidate_id,
                user_id=user_id,
                prompt=candidate.prompt,
                video_url=candidate.video_url,
                created_at=now,
            )
            s.add(row)
            s.flush()
            total += 1
            since += 1
            triggered = since >= threshold
            if triggered:
                counter.value = str(total)
                since = 0
            job.selected_candidate_id = candidate_id
            result = PickResult(_pick(row), total, since, threshold, triggered, False)
            self._outbox(s, events(result) if events is not None else [])
            return result

    def picks(self, after: int = 0, limit: int = 1000) -> list[Pick]:
        """Picks with pick_number > ``after``, oldest first: the LoRA trainer's dataset."""
        with self.session() as s:
            rows = s.scalars(
                select(PickRow).where(PickRow.pick_number > after).order_by(PickRow.pick_number).limit(limit)
            )
            return [_pick(r) for r in rows]

    # --- adapters --------------------------------------------------------------------------------------------------
    def register_adapter(self, adapter: Adapter) -> Adapter:
        with self.session() as s:
            if s.get(AdapterRow, adapter.version) is not None:
                raise FailedPrecondition(f"adapter version {adapter.version} is already registered")
            s.add(
                AdapterRow(
                    version=adapter.version,
                    base_model=adapter.base_model,
                    uri=adapter.uri,
                    parent_version=adapter.parent_version,
                    training_samples=adapter.training_samples,
                    metrics=dict(adapter.metrics),
                    rank=adapter.rank,
                    created_at=adapter.created_at,
                )
            )
        return self.require_adapter(adapter.version)

    def get_adapter(self, version: str) -> Adapter | None:
        with self.session() as s:
            row = s.get(AdapterRow, version)
            return None if row is None else _adapter(row, self._state(s, _ACTIVE_ADAPTER, BASE_VERSION).value)

    def require_adapter(self, version: str) -> Adapter:
        adapter = self.get_adapter(version)
        if adapter is None:
            raise NotFound("adapter", version)
        return adapter

    def list_adapters(self, offset: int = 0, limit: int = 50) -> list[Adapter]:
        """Registered adapters, newest first."""
        with self.session() as s:
            active = self._state(s, _ACTIVE_ADAPTER, BASE_VERSION).value
            rows = s.scalars(
                select(AdapterRow)
                .order_by(AdapterRow.created_at.desc(), AdapterRow.version.desc())
                .offset(offset)
                .limit(limit)
            )
            return [_adapter(r, active) for r in rows]

    def active_version(self) -> str:
        with self.session() as s:
            return self._state(s, _ACTIVE_ADAPTER, BASE_VERSION).value

    def set_active(self, version: str) -> str:
        """Make ``version`` (or "base") the active adapter; returns the previous one. NotFound when unknown."""
        with self.session() as s:
            if version != BASE_VERSION and s.get(AdapterRow, version) is None:
                raise NotFound("adapter", version)
            state = self._state(s, _ACTIVE_ADAPTER, BASE_VERSION, lock=True)
            previous = state.value
            state.value = version
            return previous

    # --- outbox ----------------------------------------------------------------------------------------------------
    def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        """Events not yet sent, oldest first."""
        with self.session() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.sent_at.is_(None)).order_by(OutboxRow.seq).limit(limit))
            return [OutboxEvent(r.event_id, r.topic, r.subject, r.message_type, r.payload) for r in rows]

    def mark_sent(self, event_ids: list[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.event_id.in_(event_ids)).values(sent_at=now))

    @staticmethod
    def _outbox(s: Session, events: list[OutboxEvent]) -> None:
        now = time.time()
        for e in events:
            s.add(
                OutboxRow(
                    event_id=e.event_id,
                    topic=e.topic,
                    subject=e.subject,
                    message_type=e.message_type,
                    payload=e.payload,
                    created_at=now,
                )
            )

    @staticmethod
    def _state(s: Session, name: str, default: str, *, lock: bool = False) -> StateRow:
        row = s.get(StateRow, name, with_for_update=lock)
        if row is None:
            row = StateRow(name=name, value=default)
            s.add(row)
            s.flush()
            if lock:
                row = s.get(StateRow, name, with_for_update=True) or row
        return row


def _pick(row: PickRow) -> Pick:
    return Pick(
        job_id=row.job_id,
        candidate_id=row.candidate_id,
        user_id=row.user_id,
        prompt=row.prompt,
        video_url=row.video_url,
        created_at=row.created_at,
        pick_number=row.pick_number,
    )
