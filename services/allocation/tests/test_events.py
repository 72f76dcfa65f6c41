"""Events and ledger: creator.metrics and content.scored applied once, bad events
dead-lettered, allocations.decided published once per allocation, the ledger
idempotent on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kafka import TopicPartition

from creatormesh.allocation.allocator import Allocator, PoolMemberInput, PoolRequest
from creatormesh.allocation.app import AllocationService
from creatormesh.allocation.fairness import FairnessEngine
from creatormesh.allocation.ledger import Ledger
from creatormesh.allocation.population import simulate
from creatormesh.allocation.settings import AllocationSettings
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.common import kafka_compat, topics
from creatormesh.common.runtime.broker import EmbeddedBroker
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.common.testing import postgres_schema_url
from creatormesh.events.v1 import allocations_pb2, content_pb2, creators_pb2


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url_iter: Iterator[str] = iter([f"sqlite:///{tmp_path}/ledger.db"])
    else:
        url_iter = postgres_schema_url("alloc")
    ledger = Ledger(next(url_iter))
    ledger.create_schema()
    yield ledger
    ledger.close()
    for _ in url_iter:  # runs the PostgreSQL cleanup
        pass


def test_ledger_pays_once_per_request(ledger: Ledger) -> None:
    allocator = Allocator(FairnessEngine(), ledger)
    members = [PoolMemberInput(c, s.as_dict()) for c, s in simulate(10, seed=1)]
    request = PoolRequest(request_id="r-1", budget_cents=50_000, members=members)
    first, replayed = allocator.allocate(request)
    again, replayed_again = allocator.allocate(request)
    assert (replayed, replayed_again) == (False, True)
    assert again.parts == first.parts and sum(p.amount_cents for p in first.parts) == 50_000
    assert sum(ledger.payout_totals(c) for c, _ in [(m.creator_id, 0) for m in members]) == 50_000
    assert [a.allocation_id for a in ledger.unpublished()] == [first.allocation_id]


def test_ledger_applies_each_event_once(ledger: Ledger) -> None:
    _, signals = simulate(1, seed=2)[0]
    assert ledger.record_signals("e-1", "c-1", signals)
    assert not ledger.record_signals("e-1", "c-1", signals)
    assert ledger.latest_signals(["c-1"])["c-1"]["follower_count"] == signals.follower_count
    assert ledger.record_content("e-2", "c-1", 0.8, 0.6)
    assert not ledger.record_content("e-2", "c-1", 0.8, 0.6)
    assert ledger.record_content("e-3", "c-1", 0.4, 0.2)
    assert ledger.content_stats("c-1") == pytest.approx((2, 0.6, 0.4))


@pytest_asyncio.fixture
async def running(tmp_path: Any, redis_url: str) -> AsyncIterator[tuple[AllocationService, str]]:
    broker = EmbeddedBroker()
    bootstrap = await asyncio.to_thread(broker.start)
    kit = KitSettings(
        grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap=bootstrap, redis_url=redis_url,
        consumer_retry_backoff_ms=10,
    )  # fmt: skip
    service = AllocationService(
        build_runtime(kit, "allocation"), AllocationSettings(database_url=f"sqlite:///{tmp_path}/a.db")
    )
    server = Server(service)
    await server.start()
    yield service, bootstrap
    await server.stop()
    await asyncio.to_thread(broker.stop)


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    consumer = kafka_compat.consumer(bootstrap, None, [])
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


@pytest.mark.integration
async def test_metrics_events_feed_pools_and_allocations_are_published_once(
    running: tuple[AllocationService, str],
) -> None:
    service, bootstrap = running
    bus = service.runtime.bus
    assert bus is not None
    creators = simulate(6, seed=4)
    run = uuid.uuid4().hex[:8]  # Redis remembers applied event ids across runs: fresh ids per run
    for creator_id, s in creators:
        event = creators_pb2.CreatorMetricsReported(creator_id=creator_id, signals=pb.CreatorSignals(**s.as_dict()))
        await bus.publish(topics.CREATOR_METRICS, event, subject=creator_id, event_id=f"m-{run}-{creator_id}")
        await bus.publish(
            topics.CREATOR_METRICS, event, subject=creator_id, event_id=f"m-{run}-{creator_id}"
        )  # redelivery
    bad_signals = pb.CreatorSignals(**creators[0][1].as_dict())
    bad_signals.follower_count = -1
    bad = creators_pb2.CreatorMetricsReported(creator_id="bad", signals=bad_signals)
    await bus.publish(topics.CREATOR_METRICS, bad, subject="bad")
    scored = content_pb2.ContentScored(content_id="clip-1", creator_id=creators[0][0], v=0.9, quality_score=0.7)
    await bus.publish(topics.CONTENT_SCORED, scored, subject="clip-1", event_id=f"s-{run}")
    await bus.publish(topics.CONTENT_SCORED, scored, subject="clip-1", event_id=f"s-{run}")
    ledger = service.allocator.ledger
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        known = await asyncio.to_thread(ledger.latest_signals, [c for c, _ in creators])
        stats = await asyncio.to_thread(ledger.content_stats, creators[0][0])
        if len(known) == len(creators) and stats is not None:
            break
        await asyncio.sleep(0.2)
    assert len(known) == len(creators)
    assert stats == pytest.approx((1, 0.9, 0.7))
    dlq = await asyncio.to_thread(read_topic, bootstrap, topics.dlq(topics.CREATOR_METRICS), 1)
    headers = {k: v.decode() for k, v in dlq[0].headers}
    assert headers["dlq-reason"] == "invalid-payload" and "follower_count" in headers["dlq-error"]

    request = PoolRequest(
        request_id=f"from-metrics-{run}", budget_cents=10_000, members=[PoolMemberInput(c, None) for c, _ in creators]
    )
    stored, _ = await service.allocate(request)
    await service.allocate(request)
    events = await asyncio.to_thread(read_topic, bootstrap, topics.ALLOCATIONS_DECIDED, 2, 5)
    assert len(events) == 1
    from creatormesh.common.bus import decode

    env, decided = decode(topics.ALLOCATIONS_DECIDED, events[0].value)
    assert isinstance(decided, allocations_pb2.AllocationDecided)
    assert env.event_id == stored.allocation_id == decided.allocation_id
    assert sum(p.amount_cents for p in decided.parts) == 10_000
    assert (await asyncio.to_thread(ledger.unpublished)) == []


def test_reference_context_follows_metrics_without_reloading_per_event(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from creatormesh.allocation import allocator as module

    ledger = Ledger(f"sqlite:///{tmp_path}/ref.db")
    ledger.create_schema()
    allocator = Allocator(FairnessEngine(), ledger)
    creators = simulate(30, seed=6)
    for creator_id, s in creators[:25]:
        allocator.record_metrics(f"e-{creator_id}", creator_id, s.as_dict())
    first = allocator.reference_context()
    assert sum(first.region_shares.values()) == pytest.approx(1.0)
    for creator_id, s in creators[25:]:
        allocator.record_metrics(f"e-{creator_id}", creator_id, s.as_dict())
    assert allocator.reference_context() is first  # not rebuilt within the refresh interval
    monkeypatch.setattr(module, "REFERENCE_REFRESH_SECONDS", 0.0)
    assert allocator.reference_context() is not first  # rebuilt once the interval passed
    ledger.close()
