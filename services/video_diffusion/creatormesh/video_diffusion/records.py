"""Jobs, candidates, picks and adapters as plain records (no database, no gRPC). Status numbers match the
contract's enums in ``video_diffusion.proto``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .limits import Params

BASE_VERSION = "base"
"""The adapter version that means "the base model, no adapter"."""


class JobStatus(IntEnum):
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class CandidateStatus(IntEnum):
    PENDING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5


@dataclass
class Candidate:
    """One video of a job. ``quality`` holds the measures that were computed (clip_score, temporal_consistency,
    flicker)."""

    candidate_id: str
    job_id: str
    index: int
    prompt: str
    seed: int
    status: CandidateStatus = CandidateStatus.PENDING
    video_url: str = ""
    thumbnail_url: str = ""
    frames: int = 0
    fps: int = 0
    width: int = 0
    height: int = 0
    generation_seconds: float = 0.0
    quality: dict[str, float] = field(default_factory=dict)
    error: str = ""
    selected: bool = False


@dataclass
class Job:
    """A generation job: effective parameters, its candidates and timings (epoch seconds)."""

    job_id: str
    request_id: str
    user_id: str
    params: Params
    num_candidates: int
    vary_prompt: bool
    model: str
    adapter_version: str
    status: JobStatus = JobStatus.QUEUED
    candidates: list[Candidate] = field(default_factory=list)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    generation_seconds: float = 0.0
    error: str = ""
    selected_candidate_id: str = ""
    attempts: int = 0
    owner: str = ""
    lease_until: float = 0.0

    @property
    def fraction(self) -> float:
        """Finished candidates over all candidates (1.0 once terminal)."""
        if self.status.terminal:
            return 1.0
        if not self.candidates:
            return 0.0
        done = sum(c.status in (CandidateStatus.SUCCEEDED, CandidateStatus.FAILED) for c in self.candidates)
        return done / len(self.candidates)

    @property
    def queue_seconds(self) -> float:
        end = self.started_at if self.started_at is not None else self.finished_at
        return max(0.0, end - self.created_at) if end is not None else 0.0

    @property
    def total_seconds(self) -> float:
        return max(0.0, self.finished_at - self.created_at) if self.finished_at is not None else 0.0


@dataclass(frozen=True)
class Pick:
    """A user's pick of a job's best candidate: the prompt–video pair the LoRA trainer learns from."""

    job_id: str
    candidate_id: str
    user_id: str
    prompt: str
    video_url: str
    created_at: float
    pick_number: int


@dataclass(frozen=True)
class PickResult:
    """A pick and the retraining counters after it."""

    pick: Pick
    picks_total: int
    picks_since_retrain: int
    retrain_threshold: int
    retrain_triggered: bool
    already_recorded: bool


@dataclass(frozen=True)
class Adapter:
    """A registered LoRA adapter version."""

    version: str
    base_model: str
    uri: str
    parent_version: str
    training_samples: int
    metrics: dict[str, float]
    rank: int
    created_at: float
    active: bool = False


@dataclass(frozen=True)
class OutboxEvent:
    """An event to publish once the transaction that caused it has committed: the serialised payload, the full
    name of its message type, its subject (the Kafka key) and a stable event id (so a re-send is deduplicated)."""

    event_id: str
    topic: str
    subject: str
    message_type: str
    payload: bytes
