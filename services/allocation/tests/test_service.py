"""gRPC contract tests: a real allocation server on a free port, called through the kit's client."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from creatormesh.allocation.app import AllocationService
from creatormesh.allocation.population import simulate
from creatormesh.allocation.settings import AllocationSettings
from creatormesh.allocation.signals import SEED_EXAMPLE
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.allocation.v1 import allocation_pb2_grpc
from creatormesh.common import client, grpc_errors
from creatormesh.common.server import Runtime, Server
from creatormesh.common.settings import KitSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVICE = pb.DESCRIPTOR.services_by_name["AllocationService"]


def jpeg(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[allocation_pb2_grpc.AllocationServiceAsyncStub]:
    db = tmp_path_factory.mktemp("ledger") / "allocation.db"
    kit = KitSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    service = AllocationService(Runtime(kit), AllocationSettings(database_url=f"sqlite:///{db}"))
    server = Server(service)
    port = await server.start()
    yield allocation_pb2_grpc.AllocationServiceStub(client.channel(f"127.0.0.1:{port}", SERVICE, deadline=30))
    await server.stop()
    await client.close_all()


async def invalid(call: Any) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    violations = grpc_errors.field_violations(info.value)
    assert len(violations) == 1
    return violations[0]


async def test_recommend_share_for_the_seed_example(stub: Any) -> None:
    reply = await stub.RecommendShare(
        pb.RecommendShareRequest(creator_id="c1", signals=pb.CreatorSignals(**SEED_EXAMPLE))
    )
    assert 0.40 <= reply.recommended_share <= 0.80
    assert len(reply.contributions) == 8
    assert sum(c.weight for c in reply.contributions) == pytest.approx(100)
    assert sum(c.contribution for c in reply.contributions) == pytest.approx(reply.total_score)
    assert reply.rationale and reply.policy == pb.POLICY_ENGINE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"follower_count": None}, "signals.follower_count"),
        ({"follower_count": -5}, "signals.follower_count"),
        ({"engagement_rate": float("nan")}, "signals.engagement_rate"),
        ({"retention_rate": 1.5}, "signals.retention_rate"),
        ({"avg_viewers": 20000}, "signals.avg_viewers"),
    ],
)
async def test_bad_signals_are_rejected_naming_the_field(stub: Any, change: dict[str, Any], field: str) -> None:
    values = {k: v for k, v in {**SEED_EXAMPLE, **change}.items() if v is not None}
    name, _ = await invalid(
        stub.RecommendShare(pb.RecommendShareRequest(creator_id="c", signals=pb.CreatorSignals(**values)))
    )
    assert name == field


async def test_batch_names_the_bad_item(stub: Any) -> None:
    good = pb.RecommendShareRequest(creator_id="a", signals=pb.CreatorSignals(**SEED_EXAMPLE))
    bad = pb.RecommendShareRequest(creator_id="b", signals=pb.CreatorSignals(**{**SEED_EXAMPLE, "like_count": -1}))
    name, _ = await invalid(stub.RecommendShareBatch(pb.RecommendShareBatchRequest(requests=[good, bad])))
    assert name == "requests[1].signals.like_count"
    reply = await stub.RecommendShareBatch(pb.RecommendShareBatchRequest(requests=[good, good]))
    assert len(reply.results) == 2
    name, _ = await invalid(stub.RecommendShareBatch(pb.RecommendShareBatchRequest()))
    assert name == "requests"


def pool_request(request_id: str, n: int = 20, budget: int = 1_000_003) -> pb.AllocatePoolRequest:
    members = [pb.PoolMember(creator_id=c, signals=pb.CreatorSignals(**s.as_dict())) for c, s in simulate(n, seed=3)]
    members[0].floor_cents = 100_000
    members[1].cap_cents = 10
    return pb.AllocatePoolRequest(request_id=request_id, budget_cents=budget, currency="EUR", members=members)


async def test_pool_sums_exactly_and_replays(stub: Any) -> None:
    first = await stub.AllocatePool(pool_request("pool-1"))
    parts = first.allocation.parts
    assert sum(p.amount_cents for p in parts) == 1_000_003 and not first.replayed
    assert parts[0].amount_cents >= 100_000 and parts[0].floor_applied
    assert parts[1].amount_cents <= 10 and parts[1].cap_applied
    again = await stub.AllocatePool(pool_request("pool-1"))
    assert again.replayed and again.allocation == first.allocation
    stored = await stub.GetAllocation(pb.GetAllocationRequest(allocation_id=first.allocation.allocation_id))
    assert stored.allocation == first.allocation


async def test_reusing_a_request_id_for_another_pool_is_refused(stub: Any) -> None:
    await stub.AllocatePool(pool_request("pool-2"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.AllocatePool(pool_request("pool-2", budget=5))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_pool_input_errors(stub: Any) -> None:
    request = pool_request("")
    assert (await invalid(stub.AllocatePool(request)))[0] == "request_id"
    request = pool_request("pool-3")
    request.budget_cents = -1
    assert (await invalid(stub.AllocatePool(request)))[0] == "budget_cents"
    request = pool_request("pool-4")
    request.members[2].ClearField("signals")
    assert (await invalid(stub.AllocatePool(request)))[0] == "members[2].signals"
    request = pool_request("pool-5")
    request.members[3].signals.peak_viewers = 0
    assert (await invalid(stub.AllocatePool(request)))[0] == "members[3].signals.avg_viewers"


async def test_unknown_allocation_is_not_found(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetAllocation(pb.GetAllocationRequest(allocation_id="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_dpo_policy_not_configured_is_a_failed_precondition(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RecommendShare(
            pb.RecommendShareRequest(creator_id="c", signals=pb.CreatorSignals(**SEED_EXAMPLE), policy=pb.POLICY_DPO)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_live_stream_evaluation(stub: Any) -> None:
    request = pb.EvaluateLiveStreamRequest(
        stream_id="s1",
        keyframes=[pb.Keyframe(timestamp_seconds=t, image_data=jpeg(i)) for i, t in enumerate((0.0, 30.0, 60.0))],
        transcript="Hello chat! Today we learn how to bake bread. Any questions? Great question.",
        basic_metrics=pb.BasicMetrics(
            duration_minutes=90, peak_viewers=1500, average_viewers=1200, total_comments=3200, total_likes=8500
        ),
    )  # fmt: skip
    reply = await stub.EvaluateLiveStream(request)
    for value in (reply.content_value, reply.visual_quality, reply.host_performance, reply.overall_rating):
        assert 0.0 <= value <= 1.0
    assert reply.evaluator == pb.EVALUATOR_LOCAL and reply.reasons
    vision = pb.EvaluateLiveStreamRequest()
    vision.CopyFrom(request)
    vision.evaluator = pb.EVALUATOR_VISION_LLM
    fallback = await stub.EvaluateLiveStream(vision)
    assert fallback.fallback and "configured" in fallback.fallback_reason
    batch = await stub.EvaluateLiveStreamBatch(pb.EvaluateLiveStreamBatchRequest(requests=[request, request]))
    assert len(batch.results) == 2


async def test_corrupt_keyframe_is_rejected(stub: Any) -> None:
    request = pb.EvaluateLiveStreamRequest(
        stream_id="s2", keyframes=[pb.Keyframe(timestamp_seconds=0, image_data=b"\xff\xd8\xff garbage")],
        basic_metrics=pb.BasicMetrics(duration_minutes=10, peak_viewers=10, average_viewers=5),
    )  # fmt: skip
    assert (await invalid(stub.EvaluateLiveStream(request)))[0] == "keyframes[0].image_data"
    batch = pb.EvaluateLiveStreamBatchRequest(requests=[request])
    assert (await invalid(stub.EvaluateLiveStreamBatch(batch)))[0] == "requests[0].keyframes[0].image_data"
