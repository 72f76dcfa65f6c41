"""The DPO policy behind the gRPC API: the policy proposes, the engine repairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from creatormesh.allocation.app import AllocationService
from creatormesh.allocation.policy.tiny import build_tiny_model
from creatormesh.allocation.settings import AllocationSettings
from creatormesh.allocation.signals import SEED_EXAMPLE
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.allocation.v1 import allocation_pb2_grpc
from creatormesh.common import client
from creatormesh.common.server import Runtime, Server
from creatormesh.common.settings import KitSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVICE = pb.DESCRIPTOR.services_by_name["AllocationService"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    root = tmp_path_factory.mktemp("policy")
    model = build_tiny_model(root / "model", seed=0)
    settings = AllocationSettings(
        database_url=f"sqlite:///{root}/a.db", policy_model_path=str(model), policy_timeout_seconds=30
    )
    server = Server(
        AllocationService(Runtime(KitSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)), settings)
    )
    port = await server.start()
    yield allocation_pb2_grpc.AllocationServiceStub(client.channel(f"127.0.0.1:{port}", SERVICE, deadline=60))
    await server.stop()
    await client.close_all()


async def test_dpo_recommendation_is_repaired_by_the_engine(stub: Any) -> None:
    request = pb.RecommendShareRequest(creator_id="c1", signals=pb.CreatorSignals(**SEED_EXAMPLE), policy=pb.POLICY_DPO)
    reply = await stub.RecommendShare(request)
    engine = await stub.RecommendShare(pb.RecommendShareRequest(creator_id="c1", signals=request.signals))
    assert reply.policy == pb.POLICY_DPO and reply.policy_version == "base"
    assert 0.40 <= reply.recommended_share <= 0.80
    assert abs(reply.recommended_share - engine.recommended_share) <= 0.15 + 1e-9
    if reply.policy_fallback:  # an untrained tiny model writes no usable answer: the engine's share stands
        assert reply.recommended_share == pytest.approx(engine.recommended_share)
    assert len(reply.contributions) == 8 and reply.rationale


async def test_dpo_pool_conserves_the_budget(stub: Any) -> None:
    from creatormesh.allocation.population import simulate

    members = [pb.PoolMember(creator_id=c, signals=pb.CreatorSignals(**s.as_dict())) for c, s in simulate(5, seed=9)]
    request = pb.AllocatePoolRequest(request_id="dpo-pool", budget_cents=99_999, members=members, policy=pb.POLICY_DPO)
    reply = await stub.AllocatePool(request)
    assert reply.allocation.policy == pb.POLICY_DPO and reply.allocation.policy_version == "base"
    assert sum(p.amount_cents for p in reply.allocation.parts) == 99_999
    assert all(0.40 <= p.score <= 0.80 for p in reply.allocation.parts)  # repaired shares are the split weights
    assert (await stub.AllocatePool(request)).replayed
