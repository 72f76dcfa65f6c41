"""Jobs, clips, monitored channels and recorded chunks in a database (SQLAlchemy: PostgreSQL in production,
SQLite by default), so a restart resumes where it stopped. Synchronous; the service calls it from a thread.

A running job holds a lease (owner + expiry) that its worker renews; a job whose lease expired (its worker died)
is claimed by the next replica that starts or polls, so work is resumed once, not twice.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from creatormesh.common.database import Database
from creatormesh.stream_clipper.highlights import ScoreParts, Word
from creatormesh.stream_clipper.records import (
    Channel,
    Clip,
    ClipStatus,
    Job,
    MonitorState,
    Options,
    PublishInfo,
    PublishStatus,
    Stage,
)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "clipper_jobs"
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    source_uri: Mapped[str] = mapped_column(Text)
    streamer: Mapped[str] = mapped_column(String(64), index=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    stage: Mapped[int] = mapped_column(Integer)
    fraction: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    source_duration_s: Mapped[float] = mapped_column(Float)
    stage_seconds: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)


class ClipRow(Base):
    __tablename__ = "clipper_clips"
    clip_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    stream_id: Mapped[str] = mapped_column(String(128), index=True)
    streamer: Mapped[str] = mapped_column(String(64), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    transcript: Mapped[str] = mapped_column(Text)
    words: Mapped[list[list[Any]]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(16))
    score: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_media_uri: Mapped[str] = mapped_column(Text)
    rendered_media_uri: Mapped[str] = mapped_column(Text)
    thumbnail_uri: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    viral_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    publish: Mapped[dict[str, Any]] = mapped_column(JSON)
    ready: Mapped[bool] = mapped_column(Boolean)
    announced: Mapped[bool] = mapped_column(Boolean)
    stream_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    updated_at: Mapped[float] = mapped_column(Float)


class ChannelRow(Base):
    __tablename__ = "clipper_channels"
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_seconds: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[int] = mapped_column(Integer)
    stream_id: Mapped[str] = mapped_column(String(128))
    chunks_recorded: Mapped[int] = mapped_column(Integer)
    clips_created: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float)
    last_checked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_live_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ChunkRow(Base):
    __tablename__ = "clipper_chunks"
    stream_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    processed: Mapped[bool] = mapped_column(Boolean, default=False)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _publish_json(p: PublishInfo) -> dict[str, Any]:
    data = asdict(p)
    data["status"] = int(p.status)
    data["next_attempt_at"] = _ts(p.next_attempt_at)
    data["published_at"] = _ts(p.published_at)
    return data


def _publish(data: dict[str, Any]) -> PublishInfo:
    return PublishInfo(
        status=PublishStatus(data.get("status", 1)),
        strategy=data.get("strategy", "MULTIPART"),
        publish_id=data.get("publish_id", ""),
        post_url=data.get("post_url", ""),
        error=data.get("error", ""),
        attempts=data.get("attempts", 0),
        next_attempt_at=_dt(data.get("next_attempt_at")),
        published_at=_dt(data.get("published_at")),
        sandbox=data.get("sandbox", False),
    )


def _job(row: JobRow, clip_ids: list[str]) -> Job:
    return Job(
        job_id=row.job_id, request_id=row.request_id, source_uri=row.source_uri, streamer=row.streamer,
        stream_id=row.stream_id, dry_run=row.dry_run, options=Options(**row.options), stage=Stage(row.stage),
        fraction=row.fraction, message=row.message, error=row.error, clip_ids=clip_ids,
        source_duration_s=row.source_duration_s, stage_seconds=dict(row.stage_seconds),
        created_at=_dt(row.created_at), updated_at=_dt(row.updated_at), finished_at=_dt(row.finished_at),
    )  # fmt: skip


def _clip(row: ClipRow) -> Clip:
    score = dict(row.score)
    score["matched_keywords"] = tuple(score.get("matched_keywords", ()))
    return Clip(
        clip_id=row.clip_id, job_id=row.job_id, stream_id=row.stream_id, streamer=row.streamer,
        start_s=row.start_s, end_s=row.end_s, transcript=row.transcript,
        words=[Word(w[0], w[1], w[2], w[3]) for w in row.words], language=row.language, score=ScoreParts(**score),
        source_media_uri=row.source_media_uri, rendered_media_uri=row.rendered_media_uri,
        thumbnail_uri=row.thumbnail_uri, status=ClipStatus(row.status), error=row.error,
        viral_score=row.viral_score, publish=_publish(row.publish), ready=row.ready, announced=row.announced,
        stream_started_at=_dt(row.stream_started_at), created_at=_dt(row.created_at), updated_at=_dt(row.updated_at),
    )  # fmt: skip


def _clip_values(clip: Clip, now: float) -> dict[str, Any]:
    score = asdict(clip.score)
    score["matched_keywords"] = list(clip.score.matched_keywords)
    return {
        "job_id": clip.job_id, "stream_id": clip.stream_id, "streamer": clip.streamer, "start_s": clip.start_s,
        "end_s": clip.end_s, "transcript": clip.transcript,
        "words": [[w.text, w.start, w.end, w.confidence] for w in clip.words], "language": clip.language,
        "score": score, "source_media_uri": clip.source_media_uri, "rendered_media_uri": clip.rendered_media_uri,
        "thumbnail_uri": clip.thumbnail_uri, "status": int(clip.status), "error": clip.error,
        "viral_score": clip.viral_score, "publish": _publish_json(clip.publish), "ready": clip.ready,
        "announced": clip.announced,
        "stream_started_at": _ts(clip.stream_started_at), "updated_at": now,
    }  # fmt: skip


def _channel(row: ChannelRow) -> Channel:
    return Channel(
        slug=row.slug, chunk_seconds=row.chunk_seconds, options=Options(**row.options), state=MonitorState(row.state),
        stream_id=row.stream_id, chunks_recorded=row.chunks_recorded, clips_created=row.clips_created,
        error=row.error, started_at=_dt(row.started_at), last_checked_at=_dt(row.last_checked_at),
        last_live_at=_dt(row.last_live_at),
    )  # fmt: skip


class ClipStore(Database):
    """Repository of the clipper's state."""

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    # --- jobs ----------------------------------------------------------------
    def create_job(self, job: Job, owner: str, lease_s: float) -> tuple[Job, bool]:
        """Insert ``job`` leased to ``owner``; if its request_id exists, return that job and False."""
        now = time.time()
        try:
            with self.session() as s:
                s.add(
                    JobRow(
                        job_id=job.job_id,
                        request_id=job.request_id,
                        source_uri=job.source_uri,
                        streamer=job.streamer,
                        stream_id=job.stream_id,
                        dry_run=job.dry_run,
                        options=asdict(job.options),
                        stage=int(job.stage),
                        fraction=job.fraction,
                        message=job.message,
                        error=job.error,
                        source_duration_s=job.source_duration_s,
                        stage_seconds=job.stage_seconds,
                        created_at=now,
                        updated_at=now,
                        finished_at=None,
                        owner=owner,
                        lease_until=now + lease_s,
                    )
                )
        except IntegrityError:
            existing = self.job_by_request(job.request_id)
            if existing is None:
                raise
            return existing, False
        stored = self.get_job(job.job_id)
        assert stored is not None
        return stored, True

    def get_job(self, job_id: str) -> Job | None:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _job(row, self._clip_ids(s, job_id))

    def job_by_request(self, request_id: str) -> Job | None:
        with self.session() as s:
            row = s.scalars(select(JobRow).where(JobRow.request_id == request_id)).first()
            return None if row is None else _job(row, self._clip_ids(s, row.job_id))

    @staticmethod
    def _clip_ids(s: Session, job_id: str) -> list[str]:
        query = select(ClipRow.clip_id).where(ClipRow.job_id == job_id).order_by(ClipRow.start_s)
        return list(s.scalars(query))

    def update_job(self, job: Job) -> None:
        """Write the job's progress fields."""
        now = time.time()
        with self.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.job_id == job.job_id)
                .values(
                    stage=int(job.stage),
                    fraction=job.fraction,
                    message=job.message,
                    error=job.error,
                    source_duration_s=job.source_duration_s,
                    stage_seconds=dict(job.stage_seconds),
                    updated_at=now,
                    finished_at=now if job.stage.terminal else None,
                )
            )

    def claim_jobs(self, owner: str, lease_s: float, limit: int = 10) -> list[Job]:
        """Unfinished jobs whose lease expired (their worker died), now leased to ``owner``."""
        now = time.time()
        claimed: list[Job] = []
        with self.session() as s:
            candidates = s.scalars(
                select(JobRow.job_id)
                .where(JobRow.stage.notin_([int(Stage.DONE), int(Stage.FAILED)]), JobRow.lease_until < now)
                .order_by(JobRow.created_at)
                .limit(limit)
            ).all()
        for job_id in candidates:
            with self.session() as s:
                won = cast(
                    CursorResult[Any],
                    s.execute(
                        update(JobRow)
                        .where(JobRow.job_id == job_id, JobRow.lease_until < now)
                        .values(owner=owner, lease_until=now + lease_s)
                    ),
                ).rowcount
            if won:
                job = self.get_job(job_id)
                if job is not None:
                    claimed.append(job)
        return claimed

    def renew_lease(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend the lease; False when another owner took the job."""
        with self.session() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(JobRow)
                    .where(JobRow.job_id == job_id, JobRow.owner == owner)
                    .values(lease_until=time.time() + lease_s)
                ),
            )
            return bool(result.rowcount)

    def release(self, job_id: str, owner: str) -> None:
        """Give the lease up now (shutdown), so another replica may resume the job at once."""
        with self.session() as s:
            s.execute(update(JobRow).where(JobRow.job_id == job_id, JobRow.owner == owner).values(lease_until=0.0))

    # --- clips ---------------------------------------------------------------
    def save_clip(self, clip: Clip) -> Clip:
        """Insert or update a clip; returns it as stored."""
        now = time.time()
        with self.session() as s:
            row = s.get(ClipRow, clip.clip_id)
            values = _clip_values(clip, now)
            if row is None:
                s.add(ClipRow(clip_id=clip.clip_id, created_at=now, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        stored = self.get_clip(clip.clip_id)
        assert stored is not None
        return stored

    def mark_announced(self, clip_id: str) -> None:
        with self.session() as s:
            s.execute(update(ClipRow).where(ClipRow.clip_id == clip_id).values(announced=True))

    def set_viral_score(self, clip_id: str, score: float) -> Clip | None:
        with self.session() as s:
            s.execute(
                update(ClipRow).where(ClipRow.clip_id == clip_id).values(viral_score=score, updated_at=time.time())
            )
        return self.get_clip(clip_id)

    def claim_publish(self, clip_id: str, publish: PublishInfo, busy: set[PublishStatus]) -> bool:
        """Set the clip's publish state unless it is in ``busy`` (another caller is publishing it): the
        compare-and-set that keeps a clip from being uploaded twice."""
        with self.session() as s:
            row = s.get(ClipRow, clip_id, with_for_update=True)
            if row is None or PublishStatus(row.publish.get("status", 1)) in busy:
                return False
            row.publish = _publish_json(publish)
            row.updated_at = time.time()
            return True

    def set_publish(self, clip_id: str, publish: PublishInfo) -> Clip | None:
        with self.session() as s:
            s.execute(
                update(ClipRow)
                .where(ClipRow.clip_id == clip_id)
                .values(publish=_publish_json(publish), updated_at=time.time())
            )
        return self.get_clip(clip_id)

    def get_clip(self, clip_id: str) -> Clip | None:
        with self.session() as s:
            row = s.get(ClipRow, clip_id)
            return None if row is None else _clip(row)

    def job_clips(self, job_id: str) -> list[Clip]:
        with self.session() as s:
            rows = s.scalars(select(ClipRow).where(ClipRow.job_id == job_id).order_by(ClipRow.start_s))
            return [_clip(r) for r in rows]

    def list_clips(self, streamer: str = "", stream_id: str = "", *, offset: int = 0, limit: int = 50) -> list[Clip]:
        """Clips newest first (ties by id), filtered by streamer and/or stream."""
        query = select(ClipRow)
        if streamer:
            query = query.where(ClipRow.streamer == streamer)
        if stream_id:
            query = query.where(ClipRow.stream_id == stream_id)
        query = query.order_by(ClipRow.created_at.desc(), ClipRow.clip_id).offset(offset).limit(limit)
        with self.session() as s:
            return [_clip(r) for r in s.scalars(query)]

    def clips_to_announce(self, limit: int = 100) -> list[Clip]:
        """Finished clips of non-dry-run work whose clips.created event is not confirmed sent (the outbox)."""
        dry = select(JobRow.job_id).where(JobRow.dry_run.is_(True))
        query = (
            select(ClipRow)
            .where(
                ClipRow.announced.is_(False),
                ClipRow.ready.is_(True),
                or_(ClipRow.job_id == "", ClipRow.job_id.notin_(dry)),
            )
            .order_by(ClipRow.created_at)
            .limit(limit)
        )
        with self.session() as s:
            return [_clip(r) for r in s.scalars(query)]

    # --- channels ------------------------------------------------------------
    def save_channel(self, channel: Channel) -> tuple[Channel, bool]:
        """Insert or update a monitored channel; the bool is True when it already existed."""
        with self.session() as s:
            row = s.get(ChannelRow, channel.slug)
            existed = row is not None
            values = {
                "chunk_seconds": channel.chunk_seconds, "options": asdict(channel.options),
                "state": int(channel.state), "stream_id": channel.stream_id,
                "chunks_recorded": channel.chunks_recorded, "clips_created": channel.clips_created,
                "error": channel.error, "last_checked_at": _ts(channel.last_checked_at),
                "last_live_at": _ts(channel.last_live_at),
            }  # fmt: skip
            if row is None:
                s.add(ChannelRow(slug=channel.slug, started_at=_ts(channel.started_at) or time.time(), **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        stored = self.get_channel(channel.slug)
        assert stored is not None
        return stored, existed

    def get_channel(self, slug: str) -> Channel | None:
        with self.session() as s:
            row = s.get(ChannelRow, slug)
            return None if row is None else _channel(row)

    def delete_channel(self, slug: str) -> bool:
        with self.session() as s:
            row = s.get(ChannelRow, slug)
            if row is None:
                return False
            s.delete(row)
            return True

    def list_channels(self, *, offset: int = 0, limit: int = 100) -> list[Channel]:
        with self.session() as s:
            rows = s.scalars(select(ChannelRow).order_by(ChannelRow.slug).offset(offset).limit(limit))
            return [_channel(r) for r in rows]

    # --- recorded chunks -----------------------------------------------------
    def record_chunk(self, slug: str, stream_id: str, index: int, path: str, start_s: float, end_s: float) -> bool:
        """Remember a recorded chunk (idempotent); False when it was already known."""
        try:
            with self.session() as s:
                s.add(
                    ChunkRow(
                        stream_id=stream_id,
                        index=index,
                        slug=slug,
                        path=path,
                        start_s=start_s,
                        end_s=end_s,
                        processed=False,
                    )
                )
        except IntegrityError:
            return False
        return True

    def mark_chunk_processed(self, stream_id: str, index: int) -> None:
        with self.session() as s:
            s.execute(
                update(ChunkRow).where(ChunkRow.stream_id == stream_id, ChunkRow.index == index).values(processed=True)
            )

    def pending_chunks(self, slug: str | None = None) -> list[tuple[str, str, int, str, float, float]]:
        """(slug, stream_id, index, path, start_s, end_s) of recorded chunks not processed yet, oldest first."""
        query = select(ChunkRow).where(ChunkRow.processed.is_(False))
        if slug is not None:
            query = query.where(ChunkRow.slug == slug)
        with self.session() as s:
            rows = s.scalars(query.order_by(ChunkRow.stream_id, ChunkRow.index))
            return [(r.slug, r.stream_id, r.index, r.path, r.start_s, r.end_s) for r in rows]
