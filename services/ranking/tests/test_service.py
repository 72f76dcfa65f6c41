"""RankingService over gRPC and Kafka: contract, invalid input, cold → warm through the
interactions topic, live items from content.scored, DLQ for bad events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common import client, grpc_errors, kafka_compat, topics
from creatormesh.common.bus import EventBus
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1 import content_pb2, interactions_pb2
from creatormesh.ranking.app import RankingService
from creatormesh.ranking.settings import RankingSettings
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["RankingService"]
OVERDRIVE = (("x-use-overdrive", "1"),)
pytestmark = pytest.mark.usefixtures("close_channels")


async def start(
    trained_model: Path, redis_url: str, broker: str, unique: str
) -> tuple[Any, RankingService, EventBus, Server]:
    """A RankingService in-process; with ``broker`` it consumes (group "ranking"), without it it only serves."""
    kit = KitSettings(
        grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap=broker, redis_url=redis_url,
        consumer_retry_backoff_ms=10,
    )  # fmt: skip
    settings = RankingSettings(
        model_path=str(trained_model), redis_prefix=f"test-ranking-{unique}", warm_after_interactions=5
    )
    service = RankingService(build_runtime(kit, "ranking"), settings)
    server = Server(service)
    port = await server.start()
    stub = ranking_pb2_grpc.RankingServiceStub(client.channel(f"127.0.0.1:{port}", SERVICE, deadline=30))
    return stub, service, EventBus.from_settings(kit, "test"), server


@pytest_asyncio.fixture
async def ranking(trained_model: Path, redis_url: str, unique: str) -> AsyncIterator[tuple[Any, RankingService, Any]]:
    stub, service, _bus, server = await start(trained_model, redis_url, "", unique)
    yield stub, service, None
    await server.stop()


@pytest_asyncio.fixture
async def ranking_kafka(
    trained_model: Path, redis_url: str, broker: str, unique: str
) -> AsyncIterator[tuple[Any, RankingService, EventBus]]:
    stub, service, bus, server = await start(trained_model, redis_url, broker, unique)
    yield stub, service, bus
    await bus.close()
    await server.stop()


async def test_cold_user_gets_an_interest_matched_page(ranking: Any) -> None:
    stub, service, _ = ranking
    user = f"u-{uuid.uuid4().hex[:8]}"
    stored = await stub.SetInterests(pb.SetInterestsRequest(user_id=user, interests=[" Comedy", "comedy", "Drama"]))
    assert list(stored.interests) == ["comedy", "drama"]
    page = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=10), metadata=OVERDRIVE)
    assert (page.user_state, page.blend_weight, page.arm) == (pb.USER_STATE_COLD, 0.0, "overdrive")
    assert page.arm_source == pb.ARM_SOURCE_HEADER and page.candidate_source == pb.CANDIDATE_SOURCE_INDEX
    assert len(page.items) == 10 and [i.rank for i in page.items] == list(range(1, 11))
    assert page.model_version == service.ranker.recommender.version
    matched = sum(bool({"comedy", "drama"} & set(i.genres)) for i in page.items)
    assert matched >= 8
    for item in page.items:
        b = item.breakdown
        for part in (b.two_tower, b.sequence, b.quality, b.freshness, b.interest_match, b.blend_weight):
            assert 0.0 <= part <= 1.0
        assert b.diversity_penalty >= 0
    assert [i.score for i in page.items] == sorted((i.score for i in page.items), reverse=True)


async def test_unknown_user_and_unknown_candidates_never_fail(ranking: Any) -> None:
    stub, _, _ = ranking
    features = await stub.GetFeatures(pb.GetFeaturesRequest(user_id="nobody-" + uuid.uuid4().hex))
    assert not features.features.found and features.features.total_interactions == 0
    candidates = [
        pb.CandidateItem(id=f"new-{i}", content=f"clip number {i} about {g}", hashtags=[g], genres=[g],
                         quality_score=0.2 + i / 40, creator_id=f"c{i % 3}")
        for i, g in enumerate(["gaming", "music", "cooking"] * 10)
    ]  # fmt: skip
    page = await stub.RankForYou(
        pb.RankForYouRequest(user_id="nobody", candidate_items=candidates, limit=12, diversity=0.0)
    )
    assert page.candidate_source == pb.CANDIDATE_SOURCE_REQUEST and page.candidates_considered == 30
    assert len(page.items) == 12 and {i.item_id for i in page.items} <= {c.id for c in candidates}
    diverse = await stub.RankForYou(
        pb.RankForYouRequest(user_id="nobody", candidate_items=candidates, limit=12, diversity=1.0)
    )
    assert diverse.intra_list_diversity >= page.intra_list_diversity


async def test_concurrent_calls_are_ranked_in_shared_batches_and_each_gets_its_own_page(ranking: Any) -> None:
    stub, service, _ = ranking
    users = [f"batch-{uuid.uuid4().hex[:6]}-{i}" for i in range(24)]
    for i, user in enumerate(users):
        await stub.SetInterests(pb.SetInterestsRequest(user_id=user, interests=[["comedy"], ["drama"]][i % 2]))
    alone = [await stub.RankForYou(pb.RankForYouRequest(user_id=u, limit=8), metadata=OVERDRIVE) for u in users]
    batches_before = service._batcher.batches
    together = await asyncio.gather(
        *(stub.RankForYou(pb.RankForYouRequest(user_id=u, limit=8), metadata=OVERDRIVE) for u in users)
    )
    assert service._batcher.batches - batches_before < len(users)  # some calls shared a batch
    for one, shared in zip(alone, together, strict=True):
        assert [i.item_id for i in shared.items] == [i.item_id for i in one.items]
    assert {i.item_id for i in together[0].items} != {i.item_id for i in together[1].items}  # comedy vs drama


async def test_ab_arm_comes_from_the_header_or_a_stable_bucket(ranking: Any) -> None:
    stub, _, _ = ranking
    request = pb.RankForYouRequest(user_id="ab-user", limit=5, experiment="exp-1")
    first = await stub.RankForYou(request)
    again = await stub.RankForYou(request)
    assert first.arm == again.arm and first.arm_source == pb.ARM_SOURCE_BUCKET and first.experiment == "exp-1"
    forced = await stub.RankForYou(request, metadata=(("x-use-overdrive", "0"),))
    assert (forced.arm, forced.arm_source) == ("control", pb.ARM_SOURCE_HEADER)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.RankForYouRequest(user_id=""), "user_id"),
        (pb.RankForYouRequest(user_id="u", limit=501), "limit"),
        (pb.RankForYouRequest(user_id="u", limit=-1), "limit"),
        (pb.RankForYouRequest(user_id="u", diversity=1.5), "diversity"),
        (pb.RankForYouRequest(user_id="u", experiment="x" * 129), "experiment"),
        (pb.RankForYouRequest(user_id="u", candidate_items=[pb.CandidateItem(id="")]), "candidate_items[0].id"),
        (
            pb.RankForYouRequest(user_id="u", candidate_items=[pb.CandidateItem(id="a"), pb.CandidateItem(id="a")]),
            "candidate_items[1].id",
        ),
        (
            pb.RankForYouRequest(user_id="u", candidate_items=[pb.CandidateItem(id="a", quality_score=2.0)]),
            "candidate_items[0].quality_score",
        ),
        (
            pb.RankForYouRequest(user_id="u", candidate_items=[pb.CandidateItem(id="a", engagement_rate=-0.1)]),
            "candidate_items[0].engagement_rate",
        ),
    ],
)
async def test_invalid_rank_requests_name_the_field(ranking: Any, request_: pb.RankForYouRequest, field: str) -> None:
    stub, _, _ = ranking
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RankForYou(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in grpc_errors.field_violations(info.value)]


async def test_invalid_toggle_and_interests_are_rejected(ranking: Any) -> None:
    stub, _, _ = ranking
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RankForYou(pb.RankForYouRequest(user_id="u"), metadata=(("x-use-overdrive", "maybe"),))
    assert [f for f, _ in grpc_errors.field_violations(info.value)] == ["x-use-overdrive"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SetInterests(pb.SetInterestsRequest(user_id="u", interests=["x" * 65]))
    assert [f for f, _ in grpc_errors.field_violations(info.value)] == ["interests[0]"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetInsights(pb.GetInsightsRequest(user_id=""))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def interaction(user: str, item: str, kind: int = interactions_pb2.INTERACTION_TYPE_COMPLETE) -> Any:
    return interactions_pb2.Interaction(
        user_id=user, item_id=item, type=kind, watch_seconds=20.0, watch_fraction=1.0,
        occurred_at=Timestamp(seconds=int(time.time())), session_id=f"{user}-s", arm="overdrive", experiment="e",
    )  # fmt: skip


async def wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_interactions_through_kafka_warm_the_user_up(ranking_kafka: Any) -> None:
    stub, service, bus = ranking_kafka
    user = f"u-{uuid.uuid4().hex[:8]}"
    await stub.SetInterests(pb.SetInterestsRequest(user_id=user, interests=["comedy"]))
    cold = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=20), metadata=OVERDRIVE)
    horror = [c.item_id for c in service.ranker.recommender.catalog() if "horror" in c.genres][:6]
    assert len(horror) == 6
    event_ids = [f"ev-{uuid.uuid4().hex}" for _ in horror]
    for event_id, item in zip(event_ids, horror, strict=True):
        await bus.publish(topics.INTERACTIONS, interaction(user, item), subject=user, event_id=event_id)
    await bus.publish(
        topics.INTERACTIONS, interaction(user, horror[0]), subject=user, event_id=event_ids[0]
    )  # redelivery

    async def counted() -> bool:
        f = (await stub.GetFeatures(pb.GetFeaturesRequest(user_id=user))).features
        return f.total_interactions >= len(horror)

    await wait_for(counted)
    features = (await stub.GetFeatures(pb.GetFeaturesRequest(user_id=user))).features
    assert features.total_interactions == len(horror) and features.found and 0 < features.ttl_seconds <= 3600
    assert [r.item_id for r in features.recent_items] == horror[::-1]
    warm = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=20), metadata=OVERDRIVE)
    assert (warm.user_state, warm.blend_weight) == (pb.USER_STATE_WARM, 1.0)
    assert not {i.item_id for i in warm.items} & set(horror)  # already watched
    assert [i.item_id for i in warm.items] != [i.item_id for i in cold.items]
    insights = await stub.GetInsights(pb.GetInsightsRequest(user_id=user))
    assert insights.total_interactions == len(horror) and "horror" in [w.interest for w in insights.top_interests]
    assert insights.interaction_counts["INTERACTION_TYPE_COMPLETE"] == len(horror)
    arms = {o.arm: o for o in await service.arms.outcomes("e")}
    assert arms["overdrive"].counts["complete"] >= len(horror) and arms["overdrive"].users >= 1


@pytest.mark.integration
async def test_new_items_are_indexed_live_and_bad_events_go_to_the_dlq(ranking_kafka: Any, broker: str) -> None:
    stub, service, bus = ranking_kafka
    item_id = f"clip-{uuid.uuid4().hex[:8]}"
    scored = content_pb2.ContentScored(
        content_id=item_id, creator_id="streamer-1", v=0.99, v_unpenalized=0.99, title="speedrun world record",
        genres=["speedrun"], hashtags=["gaming"], published_at=Timestamp(seconds=int(time.time())),
    )  # fmt: skip
    await bus.send_raw(topics.INTERACTIONS, b"\x00garbage", b"k", [])
    await bus.publish(topics.INTERACTIONS, interaction("u", "i", kind=0), subject="u")  # type missing
    await bus.publish(topics.CONTENT_SCORED, content_pb2.ContentScored(content_id=""), subject="none")
    await bus.publish(topics.CONTENT_SCORED, scored, subject=item_id)
    viewer = f"fan-{uuid.uuid4().hex[:8]}"
    await stub.SetInterests(pb.SetInterestsRequest(user_id=viewer, interests=["speedrun"]))

    async def ranked() -> bool:
        page = await stub.RankForYou(pb.RankForYouRequest(user_id=viewer, limit=5), metadata=OVERDRIVE)
        return bool(page.items) and page.items[0].item_id == item_id

    await wait_for(ranked)
    assert item_id in service.ranker.index
    dead = await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.INTERACTIONS), 2)
    assert dead >= 2
    assert await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.CONTENT_SCORED), 1) >= 1
