"""The events video_diffusion publishes, built as outbox entries (payload, type, subject, stable id) in the same
transaction as the state change that causes them: videos.generated, preferences.recorded, retrain.requested."""

from __future__ import annotations

import time
import uuid

from google.protobuf.message import Message

from creatormesh.common import topics
from creatormesh.events.v1 import retrain_pb2, videos_pb2

from .convert import candidate_pb, quality_pb, timestamp
from .records import Candidate, CandidateStatus, Job, OutboxEvent, PickResult

RETRAIN_MODEL = "video_diffusion.lora"
PICKS_DATASET = "vd_picks"


def _event(topic: str, subject: str, message: Message) -> OutboxEvent:
    return OutboxEvent(
        event_id=uuid.uuid4().hex,
        topic=topic,
        subject=subject,
        message_type=message.DESCRIPTOR.full_name,
        payload=message.SerializeToString(),
    )


def video_generated(job: Job, candidate: Candidate, now: float | None = None) -> OutboxEvent:
    message = videos_pb2.VideoGenerated(
        job_id=job.job_id, request_id=job.request_id, user_id=job.user_id, candidate_id=candidate.candidate_id,
        candidate_index=candidate.index, prompt=candidate.prompt, original_prompt=job.params.prompt,
        video_url=candidate.video_url, frames=candidate.frames, fps=candidate.fps,
        duration_seconds=candidate.frames / candidate.fps if candidate.fps else 0.0, width=candidate.width,
        height=candidate.height, seed=candidate.seed, model=job.model, adapter_version=job.adapter_version,
        quality=quality_pb(candidate.quality), generation_seconds=candidate.generation_seconds,
        generated_at=timestamp(time.time() if now is None else now), num_candidates=job.num_candidates,
    )  # fmt: skip
    return _event(topics.VIDEOS_GENERATED, job.job_id, message)


def preference_recorded(job: Job, result: PickResult) -> OutboxEvent:
    chosen = next(c for c in job.candidates if c.candidate_id == result.pick.candidate_id)
    rejected = [
        c for c in job.candidates if c.candidate_id != chosen.candidate_id and c.status == CandidateStatus.SUCCEEDED
    ]
    chosen_pb = candidate_pb(chosen)
    chosen_pb.selected = True
    message = videos_pb2.PreferenceRecorded(
        job_id=job.job_id, prompt=job.params.prompt, chosen=chosen_pb, rejected=[candidate_pb(c) for c in rejected],
        user_id=result.pick.user_id, picks_total=result.picks_total, model=job.model,
        adapter_version=job.adapter_version, picked_at=timestamp(result.pick.created_at),
    )  # fmt: skip
    return _event(topics.PREFERENCES_RECORDED, job.job_id, message)


def retrain_requested(result: PickResult, base_version: str, now: float | None = None) -> OutboxEvent:
    message = retrain_pb2.RetrainRequested(
        model=RETRAIN_MODEL,
        reason=f"{result.retrain_threshold} picks since the last retraining request (pick {result.picks_total})",
        sample_count=result.retrain_threshold, trigger=retrain_pb2.RETRAIN_TRIGGER_SAMPLE_THRESHOLD,
        base_version=base_version, threshold=result.retrain_threshold, dataset_uri=PICKS_DATASET,
        requested_at=timestamp(time.time() if now is None else now),
    )  # fmt: skip
    return _event(topics.RETRAIN_REQUESTED, RETRAIN_MODEL, message)
