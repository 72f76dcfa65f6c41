"""The allocation part of `creatormesh demo`: creator metrics through Kafka, a
share recommendation, a pool split (and its idempotent retry) over gRPC, the
allocations.decided event, and a live-stream evaluation of generated keyframes."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from creatormesh.allocation.population import is_newcomer, is_niche, simulate
from creatormesh.allocation.signals import CreatorSignals
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.allocation.v1 import allocation_pb2_grpc
from creatormesh.common import client, kafka_compat, topics
from creatormesh.common.demo import DemoContext
from creatormesh.common.runtime.mesh import say
from creatormesh.events.v1 import creators_pb2

SERVICE = pb.DESCRIPTOR.services_by_name["AllocationService"]
BUDGET_CENTS = 1_000_000  # $10,000.00


def signals_pb(s: CreatorSignals) -> pb.CreatorSignals:
    return pb.CreatorSignals(**s.as_dict())


def segment(s: CreatorSignals) -> str:
    return "newcomer" if is_newcomer(s) else "niche" if is_niche(s) else "established"


def keyframe(seed: int, sharp: bool) -> bytes:
    """A synthetic 640x360 frame: coloured shapes (sharp) or a dim flat blur."""
    rng = np.random.default_rng(seed)
    if sharp:
        img = np.zeros((360, 640, 3), np.uint8) + np.array([40, 60, 90], np.uint8)
        for _ in range(12):
            x, y = rng.integers(0, 600), rng.integers(0, 320)
            img[y : y + 40, x : x + 40] = rng.integers(30, 255, 3)
    else:
        img = np.full((360, 640, 3), 28, np.uint8) + rng.integers(0, 4, (360, 640, 1)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


async def wait_consumed(bootstrap: str, group: str, topic: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = await asyncio.to_thread(kafka_compat.group_lag, bootstrap, [group])
        if topic in lag.get(group, {}) and lag[group][topic] == 0:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{group} did not consume {topic} within {timeout:.0f}s")


async def run(ctx: DemoContext) -> None:
    section = ctx.report.section("Allocation: fair revenue split")
    stub = allocation_pb2_grpc.AllocationServiceStub(client.channel(ctx.target("allocation"), SERVICE, deadline=60))
    creators = simulate(12, seed=int(time.time()) % 1000)
    say(f"demo      allocation: publishing creator.metrics for {len(creators)} creators")
    for creator_id, s in creators:
        event = creators_pb2.CreatorMetricsReported(creator_id=creator_id, signals=signals_pb(s), source="demo")
        await ctx.bus.publish(topics.CREATOR_METRICS, event, subject=creator_id)
    await wait_consumed(ctx.state.kafka_bootstrap, "allocation", topics.CREATOR_METRICS)

    newcomer = next(((c, s) for c, s in creators if is_newcomer(s)), creators[0])
    rec = await stub.RecommendShare(pb.RecommendShareRequest(creator_id=newcomer[0], signals=signals_pb(newcomer[1])))
    section.summary.append(
        f"RecommendShare({rec.creator_id}, {segment(newcomer[1])}): share {rec.recommended_share:.1%}, "
        f"score {rec.total_score:.3f} — {rec.rationale}"
    )
    section.tables.append(
        (
            ["principle", "weight", "score", "contribution"],
            [
                [
                    pb.Principle.Name(c.principle).removeprefix("PRINCIPLE_").lower(),
                    f"{c.weight:g}",
                    f"{c.score:.2f}",
                    f"{c.contribution:.3f}",
                ]
                for c in rec.contributions
            ],
        )
    )

    request_id = f"demo-pool-{uuid.uuid4().hex[:8]}"
    request = pb.AllocatePoolRequest(
        request_id=request_id,
        pool_id="demo-weekly",
        budget_cents=BUDGET_CENTS,
        currency="USD",
        members=[pb.PoolMember(creator_id=c) for c, _ in creators],  # signals come from creator.metrics
    )
    say(f"demo      allocation: AllocatePool ${BUDGET_CENTS / 100:,.2f} across {len(creators)} creators")
    first = await stub.AllocatePool(request)
    again = await stub.AllocatePool(request)
    parts = first.allocation.parts
    total_views = sum(s.viewer_count for _, s in creators) or 1
    by_id = dict(creators)
    rows: list[Sequence[Any]] = []
    for p in sorted(parts, key=lambda p: -p.amount_cents):
        s = by_id[p.creator_id]
        baseline = BUDGET_CENTS * s.viewer_count / total_views
        rows.append(
            [
                p.creator_id,
                segment(s),
                f"{s.viewer_count:,}",
                f"{p.score:.3f}",
                f"${p.amount_cents / 100:,.2f}",
                f"${baseline / 100:,.2f}",
            ]
        )
    section.tables.append((["creator", "segment", "viewers", "fairness", "engine payout", "by views"], rows))
    paid = sum(p.amount_cents for p in parts)
    same = [p.amount_cents for p in again.allocation.parts] == [p.amount_cents for p in parts]
    section.summary.append(
        f"AllocatePool {first.allocation.allocation_id}: parts sum to {paid} of {BUDGET_CENTS} cents; "
        f"retry with the same request_id replayed={again.replayed}, identical amounts: {same}"
    )
    section.ok = paid == BUDGET_CENTS and again.replayed and same

    say("demo      allocation: EvaluateLiveStream on generated keyframes")
    evaluation = await stub.EvaluateLiveStream(
        pb.EvaluateLiveStreamRequest(
            stream_id="demo-stream",
            keyframes=[pb.Keyframe(timestamp_seconds=60.0 * i, image_data=keyframe(i, sharp=True)) for i in range(4)],
            transcript=(
                "Welcome back everyone, thanks for joining! Today I will show you how to cook a quick ramen. "
                "First we boil the broth, then we add the noodles. Any questions in chat? Great question, "
                "the secret is fresh ginger."
            ),
            basic_metrics=pb.BasicMetrics(
                duration_minutes=90, peak_viewers=1500, average_viewers=1200, total_comments=3200, total_likes=8500
            ),
        )
    )
    evaluator_name = pb.Evaluator.Name(evaluation.evaluator).removeprefix("EVALUATOR_").lower()
    section.summary.append(
        f"EvaluateLiveStream: content_value {evaluation.content_value:.2f}, visual_quality "
        f"{evaluation.visual_quality:.2f}, host_performance {evaluation.host_performance:.2f}, overall "
        f"{evaluation.overall_rating:.2f} ({evaluator_name} evaluator)"
    )
