"""gRPC adapter: AllocationService proto <-> the allocation domain, nothing else."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from creatormesh.allocation import evaluation
from creatormesh.allocation.allocator import DPO, ENGINE, PoolMemberInput, PoolRequest, Recommendation
from creatormesh.allocation.fairness import Assessment
from creatormesh.allocation.ledger import StoredAllocation
from creatormesh.allocation.signals import validate
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.allocation.v1 import allocation_pb2_grpc
from creatormesh.common.errors import InvalidArgument, require

if TYPE_CHECKING:
    from creatormesh.allocation.app import AllocationService

MAX_SHARE_BATCH = 256
MAX_EVALUATION_BATCH = 32
_POLICIES: dict[int, str] = {pb.POLICY_UNSPECIFIED: "", pb.POLICY_ENGINE: ENGINE, pb.POLICY_DPO: DPO}
_EVALUATORS: dict[int, str] = {
    pb.EVALUATOR_UNSPECIFIED: "",
    pb.EVALUATOR_LOCAL: "local",
    pb.EVALUATOR_VISION_LLM: "vision_llm",
}
_DIMENSIONS = {
    "content_value": pb.EVALUATION_DIMENSION_CONTENT_VALUE,
    "visual_quality": pb.EVALUATION_DIMENSION_VISUAL_QUALITY,
    "host_performance": pb.EVALUATION_DIMENSION_HOST_PERFORMANCE,
    "overall_rating": pb.EVALUATION_DIMENSION_OVERALL_RATING,
}


def present(message: Message) -> dict[str, Any]:
    """The fields set on ``message`` (so a missing optional input is reported as missing)."""
    return {f.name: value for f, value in message.ListFields()}


def signals_of(request: pb.RecommendShareRequest, prefix: str) -> dict[str, Any]:
    if not request.HasField("signals"):
        raise InvalidArgument(prefix + "signals", "is required")
    return present(request.signals)


def recommendation_pb(rec: Recommendation) -> pb.RecommendShareResponse:
    return pb.RecommendShareResponse(
        creator_id=rec.creator_id,
        recommended_share=rec.share,
        total_score=rec.assessment.total_score,
        contributions=contributions_pb(rec.assessment),
        rationale=rec.rationale or rec.assessment.rationale,
        policy=pb.POLICY_DPO if rec.policy == DPO else pb.POLICY_ENGINE,
        policy_fallback=rec.fallback,
        policy_version=rec.policy_version,
    )


def contributions_pb(assessment: Assessment) -> list[pb.PrincipleContribution]:
    return [
        pb.PrincipleContribution(
            principle=pb.Principle.Value("PRINCIPLE_" + c.principle.name),
            weight=c.weight,
            score=c.score,
            contribution=c.contribution,
            explanation=c.explanation,
        )
        for c in assessment.contributions
    ]


def allocation_pb(a: StoredAllocation) -> pb.Allocation:
    out = pb.Allocation(
        allocation_id=a.allocation_id,
        request_id=a.request_id,
        pool_id=a.pool_id,
        budget_cents=a.budget_cents,
        currency=a.currency,
        policy=pb.POLICY_DPO if a.policy == DPO else pb.POLICY_ENGINE,
        policy_version=a.policy_version,
        parts=[
            pb.AllocationPart(
                creator_id=p.creator_id,
                amount_cents=p.amount_cents,
                share=p.share,
                score=p.score,
                floor_applied=p.floor_applied,
                cap_applied=p.cap_applied,
            )
            for p in a.parts
        ],
    )
    out.created_at.FromNanoseconds(int(a.created_at * 1e9))
    if a.period_start is not None and a.period_end is not None:
        out.period.start_time.FromNanoseconds(int(a.period_start * 1e9))
        out.period.end_time.FromNanoseconds(int(a.period_end * 1e9))
    return out


def stream_of(request: pb.EvaluateLiveStreamRequest) -> evaluation.StreamInput:
    m = request.basic_metrics
    return evaluation.StreamInput(
        stream_id=request.stream_id,
        keyframes=tuple(  # the contract accepts keyframes in any order
            evaluation.Keyframe(k.timestamp_seconds, k.image_data)
            for k in sorted(request.keyframes, key=lambda k: k.timestamp_seconds)
        ),
        transcript=request.transcript,
        metrics=evaluation.BasicMetrics(
            m.duration_minutes, m.peak_viewers, m.average_viewers, m.total_comments, m.total_likes
        ),
    )


def evaluation_pb(e: evaluation.Evaluation) -> pb.EvaluateLiveStreamResponse:
    return pb.EvaluateLiveStreamResponse(
        stream_id=e.stream_id,
        content_value=e.content_value,
        visual_quality=e.visual_quality,
        host_performance=e.host_performance,
        overall_rating=e.overall_rating,
        reasons=[
            pb.EvaluationReason(
                dimension=_DIMENSIONS.get(r.dimension, pb.EVALUATION_DIMENSION_UNSPECIFIED), text=r.text
            )
            for r in e.reasons
        ],
        evaluator=pb.EVALUATOR_VISION_LLM if e.evaluator == "vision_llm" else pb.EVALUATOR_LOCAL,
        fallback=e.fallback,
        fallback_reason=e.fallback_reason,
        evaluator_version=e.version,
        measurements=dict(e.measurements),
    )


class AllocationServicer(allocation_pb2_grpc.AllocationServiceServicer):
    def __init__(self, service: AllocationService) -> None:
        self.service = service

    def _policy(self, value: int, field: str) -> str:
        policy = _POLICIES.get(value)
        if policy is None:
            raise InvalidArgument(field, f"unknown policy {value}")
        return policy or self.service.settings.default_policy

    async def _recommend(self, request: pb.RecommendShareRequest, prefix: str) -> Recommendation:
        policy = self._policy(request.policy, prefix + "policy")
        signals = validate(signals_of(request, prefix), prefix=prefix + "signals.")
        require(bool(request.creator_id.strip()), prefix + "creator_id", "is required")
        if policy == DPO:
            return await self.service.recommend_with_policy(request.creator_id, signals)
        return await asyncio.to_thread(self.service.allocator.recommend, request.creator_id, signals)

    async def RecommendShare(self, request: pb.RecommendShareRequest, context: Any) -> pb.RecommendShareResponse:
        return recommendation_pb(await self._recommend(request, ""))

    async def RecommendShareBatch(
        self, request: pb.RecommendShareBatchRequest, context: Any
    ) -> pb.RecommendShareBatchResponse:
        n = len(request.requests)
        require(1 <= n <= MAX_SHARE_BATCH, "requests", f"must have 1..{MAX_SHARE_BATCH} items, got {n}")
        results = [await self._recommend(r, f"requests[{i}].") for i, r in enumerate(request.requests)]
        return pb.RecommendShareBatchResponse(results=[recommendation_pb(r) for r in results])

    async def AllocatePool(self, request: pb.AllocatePoolRequest, context: Any) -> pb.AllocatePoolResponse:
        policy = self._policy(request.policy, "policy")
        members = [
            PoolMemberInput(
                m.creator_id,
                present(m.signals) if m.HasField("signals") else None,
                m.floor_cents if m.HasField("floor_cents") else None,
                m.cap_cents if m.HasField("cap_cents") else None,
            )
            for m in request.members
        ]
        period = None
        if request.HasField("period"):
            start, end = request.period.start_time.ToNanoseconds() / 1e9, request.period.end_time.ToNanoseconds() / 1e9
            require(end > start, "period.end_time", "must be after period.start_time")
            period = (start, end)
        pool = PoolRequest(
            request_id=request.request_id,
            budget_cents=request.budget_cents,
            members=members,
            pool_id=request.pool_id,
            currency=request.currency or "USD",
            policy=policy,
            period=period,
        )
        stored, replayed = await self.service.allocate(pool)
        return pb.AllocatePoolResponse(allocation=allocation_pb(stored), replayed=replayed)

    async def GetAllocation(self, request: pb.GetAllocationRequest, context: Any) -> pb.GetAllocationResponse:
        stored = await asyncio.to_thread(self.service.allocator.get, request.allocation_id)
        return pb.GetAllocationResponse(allocation=allocation_pb(stored))

    def _prepare(self, request: pb.EvaluateLiveStreamRequest, prefix: str) -> tuple[evaluation.StreamInput, str]:
        """Validate one evaluation request: the stream and which evaluator to use."""
        which = _EVALUATORS.get(request.evaluator)
        if which is None:
            raise InvalidArgument(prefix + "evaluator", f"unknown evaluator {request.evaluator}")
        stream = stream_of(request)
        evaluation.validate_stream(stream, self.service.limits, prefix=prefix)
        return stream, which

    async def EvaluateLiveStream(
        self, request: pb.EvaluateLiveStreamRequest, context: Any
    ) -> pb.EvaluateLiveStreamResponse:
        return evaluation_pb(await self.service.evaluate(*self._prepare(request, "")))

    async def EvaluateLiveStreamBatch(
        self, request: pb.EvaluateLiveStreamBatchRequest, context: Any
    ) -> pb.EvaluateLiveStreamBatchResponse:
        n = len(request.requests)
        require(1 <= n <= MAX_EVALUATION_BATCH, "requests", f"must have 1..{MAX_EVALUATION_BATCH} items, got {n}")
        streams = [self._prepare(r, f"requests[{i}].") for i, r in enumerate(request.requests)]  # all, first
        results = [await self.service.evaluate(s, w) for s, w in streams]
        return pb.EvaluateLiveStreamBatchResponse(results=[evaluation_pb(e) for e in results])
