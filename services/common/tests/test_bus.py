"""Event-bus integration tests against the embedded broker and a real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, TopicPartition
from prometheus_client import REGISTRY

from creatormesh.common import errors, kafka_compat, topics
from creatormesh.common.bus import Event, EventBus, run_consumer
from creatormesh.common.redis_pool import redis_client
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1.envelope_pb2 import Envelope
from creatormesh.testing.v1 import echo_pb2

pytestmark = pytest.mark.integration
TOPIC = topics.SELFCHECK
HERE = Path(__file__).parent


def kit(broker: str, redis_url: str, **kw: Any) -> KitSettings:
    return KitSettings(kafka_bootstrap=broker, redis_url=redis_url, consumer_retry_backoff_ms=10, **kw)


@pytest.fixture
async def bus(broker: str, redis_url: str) -> AsyncIterator[EventBus]:
    b = EventBus.from_settings(kit(broker, redis_url), "tests")
    yield b
    await b.close()


class Consumer:
    """run_consumer in the background, collecting this test's events only."""

    def __init__(self, bus: EventBus, group: str, marker: str, handler: Callable[[Event], Any] | None = None) -> None:
        self.bus, self.group, self.marker = bus, group, marker
        self.applied: list[str] = []
        self.handler = handler
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def handle(self, event: Event) -> None:
        if not event.payload.message.startswith(self.marker):
            return
        if self.handler is not None:
            await self.handler(event)
        self.applied.append(event.payload.message)

    async def __aenter__(self) -> Consumer:
        self.task = asyncio.create_task(run_consumer(self.bus, self.group, {TOPIC: self.handle}, self.stop))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)

    async def wait_for(self, count: int, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while len(self.applied) < count and time.monotonic() < deadline:
            assert self.task is not None and not self.task.done(), "consumer stopped"
            await asyncio.sleep(0.05)
        assert len(self.applied) >= count, f"only {self.applied} after {timeout}s"


def dead_letters(broker: str, group: str, expected: int, timeout: float = 30) -> list[dict[str, str]]:
    """The DLQ records this test's group wrote, as header dicts."""
    consumer = kafka_compat.consumer(broker, None, [])
    consumer.assign([TopicPartition(topics.dlq(TOPIC), 0)])
    consumer.seek(TopicPartition(topics.dlq(TOPIC), 0), 0)
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    headers = {k: v.decode() for k, v in r.headers or []}
                    if headers.get("dlq-group") == group:
                        found.append(headers)
        return found
    finally:
        consumer.close()


def committed(broker: str, group: str) -> int:
    """The group's committed offset on the test topic (0 when nothing is committed)."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        meta = offsets.get(TopicPartition(TOPIC, 0))
        return max(meta.offset, 0) if meta is not None else 0
    finally:
        admin.close()


def next_offset(broker: str) -> int:
    """The offset the next message on the test topic will get."""
    tp = TopicPartition(TOPIC, 0)
    return kafka_compat._high_watermarks(broker, [tp], 10).get(tp, 0)


async def test_publish_consume_effect_once(bus: EventBus, unique: str) -> None:
    event_id = await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-a"), subject=unique)
    assert event_id
    async with Consumer(bus, f"g-{unique}", unique) as consumer:
        await consumer.wait_for(1)
        await asyncio.sleep(1.0)
    assert consumer.applied == [f"{unique}-a"]


async def test_envelope_fields(bus: EventBus) -> None:
    env = bus.envelope(echo_pb2.EchoRequest(message="m"), subject="s-1")
    assert env.type == "creatormesh.testing.v1.EchoRequest"
    assert env.producer == "tests" and env.schema_version == 1 and env.subject == "s-1"
    assert env.occurred_at.seconds > 0 and len(env.event_id) == 36
    assert env.traceparent.startswith("00-")


async def test_publish_rejects_the_wrong_payload_for_a_topic(bus: EventBus) -> None:
    with pytest.raises(errors.InvalidArgument):
        await bus.publish(topics.INTERACTIONS, echo_pb2.EchoRequest(message="x"), subject="x")


async def test_duplicate_delivery_applies_once(bus: EventBus, unique: str) -> None:
    for _ in range(3):
        await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-dup"), subject=unique, event_id=f"id-{unique}")
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-next"), subject=unique)
    async with Consumer(bus, f"g-{unique}", unique) as consumer:
        await consumer.wait_for(2)
        await asyncio.sleep(1.0)
    assert consumer.applied == [f"{unique}-dup", f"{unique}-next"]
    labels = {"topic": TOPIC, "group": f"g-{unique}", "outcome": "duplicate"}
    assert REGISTRY.get_sample_value("creatormesh_events_processed_total", labels) == 2


async def test_poison_messages_go_to_the_dlq_and_the_consumer_keeps_going(bus: EventBus, unique: str) -> None:
    group = f"g-{unique}"
    wrong_type = bus.envelope(echo_pb2.EchoResponse(message="wrong"), subject=unique).SerializeToString()
    no_id = Envelope(type="creatormesh.testing.v1.EchoRequest").SerializeToString()
    await bus.send_raw(TOPIC, b"\xff\x00garbage", unique.encode(), [("x-test", b"1")])
    await bus.send_raw(TOPIC, wrong_type, unique.encode(), [])
    await bus.send_raw(TOPIC, no_id, unique.encode(), [])
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-invalid"), subject=unique)
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-always-fails"), subject=unique)
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-flaky"), subject=unique)
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-good"), subject=unique)
    attempts: dict[str, int] = {}

    async def handler(event: Event) -> None:
        text = event.payload.message
        attempts[text] = attempts.get(text, 0) + 1
        if text.endswith("-invalid"):
            raise errors.InvalidArgument("message", "not allowed")
        if text.endswith("-always-fails"):
            raise ConnectionError("downstream down")
        if text.endswith("-flaky") and attempts[text] < 2:
            raise TimeoutError("once")

    async with Consumer(bus, group, unique, handler) as consumer:
        await consumer.wait_for(2)
    assert consumer.applied == [f"{unique}-flaky", f"{unique}-good"]
    assert attempts[f"{unique}-invalid"] == 1
    assert attempts[f"{unique}-always-fails"] == 3
    dlq = await asyncio.to_thread(dead_letters, bus.bootstrap, group, 5)
    reasons = sorted(h["dlq-reason"] for h in dlq)
    assert reasons == ["handler-failed", "invalid-event", "invalid-event", "invalid-event", "invalid-payload"]
    garbage = next(h for h in dlq if h.get("x-test") == "1")
    assert garbage["dlq-source-topic"] == TOPIC and "envelope" in garbage["dlq-error"]
    failed = next(h for h in dlq if h["dlq-reason"] == "handler-failed")
    assert "ConnectionError: downstream down" in failed["dlq-error"] and failed["dlq-attempts"] == "3"


async def test_redis_effect_and_idempotency_key_in_one_transaction(bus: EventBus, redis_url: str, unique: str) -> None:
    counter = f"test:counter:{unique}"

    async def handler(event: Event) -> None:
        pipe = redis_client(redis_url).pipeline(transaction=True)
        pipe.incr(counter)
        event.mark_applied_in(pipe)
        await pipe.execute()

    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-x"), subject=unique, event_id=f"e-{unique}")
    async with Consumer(bus, f"g-{unique}", unique, handler) as consumer:
        await consumer.wait_for(1)
    assert int(await redis_client(redis_url).get(counter)) == 1
    assert await redis_client(redis_url).exists(f"creatormesh:applied:g-{unique}:e-{unique}")


def start_consumer(broker: str, redis_url: str, group: str, counter: str, mode: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "consumer_proc.py"), broker, redis_url, group, counter, mode],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["crash-after-effect", "crash-before-effect"])
async def test_consumer_killed_before_commit_is_redelivered_and_applied_once(
    bus: EventBus, broker: str, redis_url: str, unique: str, mode: str
) -> None:
    group, counter = f"g-{unique}", f"test:counter:{unique}"
    offset = await asyncio.to_thread(next_offset, broker)
    await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-kill"), subject=unique)
    first = start_consumer(broker, redis_url, group, counter, mode)
    assert first.wait(60) == -signal.SIGKILL, first.stdout.read() if first.stdout else ""
    before = await redis_client(redis_url).get(counter)
    assert (int(before) if before else 0) == (1 if mode == "crash-after-effect" else 0)
    assert await asyncio.to_thread(committed, broker, group) <= offset  # the killed event is not committed
    second = start_consumer(broker, redis_url, group, counter, "normal")
    try:
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(committed, broker, group) <= offset and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        assert await asyncio.to_thread(committed, broker, group) > offset
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(30)
    output = second.stdout.read().decode() if second.stdout else ""
    assert code == 0, output
    assert int(await redis_client(redis_url).get(counter)) == 1
    assert "stopped" in output


async def test_consumer_lag_is_exported(bus: EventBus, unique: str) -> None:
    group = f"g-{unique}"
    for i in range(3):
        await bus.publish(TOPIC, echo_pb2.EchoRequest(message=f"{unique}-{i}"), subject=unique)
    async with Consumer(bus, group, unique) as consumer:
        await consumer.wait_for(3)
        await asyncio.sleep(1.0)
    lag = REGISTRY.get_sample_value("creatormesh_consumer_lag", {"topic": TOPIC, "partition": "0", "group": group})
    assert lag == 0
    lags = await asyncio.to_thread(kafka_compat.group_lag, bus.bootstrap, [group])
    assert lags[group][TOPIC] == 0
