"""Plain records of the clipper's state (jobs, clips, monitored channels), free of storage and transport code."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from creatormesh.stream_clipper.highlights import ScoreParts, Word


class Stage(enum.IntEnum):
    """A job's stage in pipeline order (numbers as in the contract's Stage enum)."""

    QUEUED = 1
    DOWNLOADING = 2
    ANALYZING_AUDIO = 3
    TRANSCRIBING = 4
    SCORING = 5
    CUTTING = 6
    RENDERING = 7
    PUBLISHING = 8
    DONE = 9
    FAILED = 10

    @property
    def terminal(self) -> bool:
        return self in (Stage.DONE, Stage.FAILED)


class ClipStatus(enum.IntEnum):
    DETECTED = 1
    CUT = 2
    RENDERED = 3
    FAILED = 4


class PublishStatus(enum.IntEnum):
    NOT_PUBLISHED = 1
    PENDING = 2
    UPLOADING = 3
    PROCESSING = 4
    PUBLISHED = 5
    FAILED = 6
    SKIPPED = 7


class MonitorState(enum.IntEnum):
    OFFLINE = 1
    RECORDING = 2
    ERROR = 3


@dataclass(frozen=True, kw_only=True)
class Options:
    """Effective clip options (defaults filled in)."""

    max_clips: int = 3
    min_duration_s: float = 15.0
    max_duration_s: float = 60.0
    language: str = ""
    chat_log_uri: str = ""
    render: bool = True
    publish: bool = False


@dataclass(kw_only=True)
class PublishInfo:
    status: PublishStatus = PublishStatus.NOT_PUBLISHED
    strategy: str = "MULTIPART"
    publish_id: str = ""
    post_url: str = ""
    error: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    published_at: datetime | None = None
    sandbox: bool = False


@dataclass(kw_only=True)
class Clip:
    clip_id: str
    job_id: str
    stream_id: str
    streamer: str
    start_s: float
    end_s: float
    transcript: str = ""
    words: list[Word] = field(default_factory=list)
    language: str = ""
    score: ScoreParts = field(default_factory=lambda: ScoreParts(0.0, 0.0, 0.0, 0.0, 0.0))
    source_media_uri: str = ""
    rendered_media_uri: str = ""
    thumbnail_uri: str = ""
    status: ClipStatus = ClipStatus.DETECTED
    error: str = ""
    viral_score: float | None = None
    publish: PublishInfo = field(default_factory=PublishInfo)
    ready: bool = False
    announced: bool = False
    stream_started_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(kw_only=True)
class Job:
    job_id: str
    request_id: str
    source_uri: str
    streamer: str
    stream_id: str
    dry_run: bool = False
    options: Options = field(default_factory=Options)
    stage: Stage = Stage.QUEUED
    fraction: float = 0.0
    message: str = ""
    error: str = ""
    clip_ids: list[str] = field(default_factory=list)
    source_duration_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(kw_only=True)
class Channel:
    slug: str
    chunk_seconds: int = 60
    options: Options = field(default_factory=Options)
    state: MonitorState = MonitorState.OFFLINE
    stream_id: str = ""
    chunks_recorded: int = 0
    clips_created: int = 0
    error: str = ""
    started_at: datetime | None = None
    last_checked_at: datetime | None = None
    last_live_at: datetime | None = None
