"""Records <-> contract messages (video_diffusion.v1 and the video events), and request validation. No I/O."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common.errors import require
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb

from .limits import ModelLimits, Params, validate
from .records import Adapter, Candidate, Job

MAX_CANDIDATES, DEFAULT_CANDIDATES = 8, 5
MAX_ID_CHARS = {"request_id": 128, "user_id": 256}


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


def require_id(value: str, field: str, max_chars: int = 128) -> str:
    require(value.strip() != "", field, "is required")
    require(len(value) <= max_chars, field, f"must be at most {max_chars} characters")
    return value


def generation(msg: Any, has_params: bool, limits: ModelLimits, default_negative: str) -> tuple[Params, int, bool]:
    """(params, candidates, vary_prompt) of a ``GenerationParams`` message; InvalidArgument naming the field."""
    require(has_params, "params", "is required")
    params = validate(msg, limits, default_negative_prompt=default_negative)
    count = int(msg.num_candidates) or DEFAULT_CANDIDATES
    require(1 <= count <= MAX_CANDIDATES, "params.num_candidates", f"must be in 1..{MAX_CANDIDATES} (0 = 5)")
    vary = msg.vary_prompt if msg.HasField("vary_prompt") else True
    return params, count, vary


def params_pb(p: Params, num_candidates: int, vary_prompt: bool) -> pb.GenerationParams:
    return pb.GenerationParams(
        prompt=p.prompt, negative_prompt=p.negative_prompt, num_frames=p.num_frames, fps=p.fps, width=p.width,
        height=p.height, num_inference_steps=p.steps, guidance_scale=p.guidance, seed=p.seed,
        num_candidates=num_candidates, vary_prompt=vary_prompt,
    )  # fmt: skip


def quality_pb(quality: dict[str, float]) -> pb.QualityMetrics:
    return pb.QualityMetrics(**{k: v for k, v in quality.items() if k in pb.QualityMetrics.DESCRIPTOR.fields_by_name})


def candidate_pb(c: Candidate) -> pb.Candidate:
    return pb.Candidate(
        candidate_id=c.candidate_id, job_id=c.job_id, index=c.index, prompt=c.prompt, seed=c.seed,
        status=pb.CandidateStatus.ValueType(c.status), video_url=c.video_url, frames=c.frames, fps=c.fps,
        duration_seconds=c.frames / c.fps if c.fps else 0.0, width=c.width, height=c.height,
        quality=quality_pb(c.quality), generation_seconds=c.generation_seconds, selected=c.selected, error=c.error,
        thumbnail_url=c.thumbnail_url,
    )  # fmt: skip


def job_pb(j: Job) -> pb.Job:
    timings = pb.JobTimings(
        created_at=timestamp(j.created_at), started_at=timestamp(j.started_at), finished_at=timestamp(j.finished_at),
        queue_seconds=j.queue_seconds, generation_seconds=j.generation_seconds, total_seconds=j.total_seconds,
    )  # fmt: skip
    return pb.Job(
        job_id=j.job_id, request_id=j.request_id, user_id=j.user_id, status=pb.JobStatus.ValueType(j.status),
        params=params_pb(j.params, j.num_candidates, j.vary_prompt), model=j.model, adapter_version=j.adapter_version,
        candidates=[candidate_pb(c) for c in j.candidates], timings=timings, error=j.error, fraction=j.fraction,
        selected_candidate_id=j.selected_candidate_id, attempts=j.attempts,
    )  # fmt: skip


def adapter_pb(a: Adapter) -> pb.Adapter:
    return pb.Adapter(
        version=a.version, base_model=a.base_model, uri=a.uri, parent_version=a.parent_version,
        training_samples=a.training_samples, metrics=a.metrics, active=a.active, created_at=timestamp(a.created_at),
        rank=a.rank,
    )  # fmt: skip
