"""What the event bus costs: raw kafka-python produce/consume vs the kit's bus
(envelope, acks=all per event, Redis idempotency check + mark, commit after
effect), against the embedded broker, in the same run.

    .venv/bin/python benchmarks/bus_throughput.py [--messages 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

from creatormesh.common import kafka_compat, topics
from creatormesh.common.bus import Event, EventBus, run_consumer
from creatormesh.common.redis_pool import ping
from creatormesh.common.runtime.broker import EmbeddedBroker
from creatormesh.common.runtime.redis_server import EmbeddedRedis
from creatormesh.common.settings import KitSettings
from creatormesh.testing.v1 import echo_pb2

TOPIC = topics.SELFCHECK


def raw_produce(bootstrap: str, values: list[bytes]) -> float:
    """Send pre-serialized envelopes (distinct event ids) and flush."""
    n = len(values)
    producer = kafka_compat.producer(bootstrap)
    started = time.perf_counter()
    for i, value in enumerate(values):
        producer.send(TOPIC, key=str(i % 16).encode(), value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return n / elapsed


def raw_consume(bootstrap: str, n: int) -> float:
    consumer = kafka_compat.consumer(bootstrap, f"raw-{uuid.uuid4().hex[:8]}", [TOPIC])
    seen = 0
    started = None
    while seen < n:
        batch = consumer.poll(timeout_ms=500)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(len(r) for r in batch.values())
        if batch:
            consumer.commit()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return n / elapsed


async def bus_produce(bus: EventBus, n: int, window: int = 256) -> float:
    message = echo_pb2.EchoRequest(message="bench", payload=b"x" * 64)
    started = time.perf_counter()
    for start in range(0, n, window):
        await asyncio.gather(
            *(bus.publish(TOPIC, message, subject=str(i % 16)) for i in range(start, min(n, start + window)))
        )
    return n / (time.perf_counter() - started)


async def bus_consume(bus: EventBus, n: int) -> float:
    count = 0
    first: float | None = None
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        nonlocal count, first
        if first is None:
            first = time.perf_counter()
        count += 1
        if count >= n:
            done.set()

    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(bus, f"bus-{uuid.uuid4().hex[:8]}", {TOPIC: handler}, stop))
    await done.wait()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    stop.set()
    await task
    return n / elapsed


async def main(args: argparse.Namespace) -> None:
    redis_url = os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0")
    private = None
    if not await ping(redis_url):
        private = EmbeddedRedis()
        redis_url = private.start()
    rows: dict[str, list[float]] = {"raw produce": [], "bus publish": [], "raw consume": [], "bus consume": []}
    maker = EventBus("", "bench", KitSettings())
    message = echo_pb2.EchoRequest(message="bench", payload=b"x" * 64)
    values = [maker.envelope(message, str(i % 16)).SerializeToString() for i in range(args.messages)]
    for rnd in range(args.rounds):
        broker = EmbeddedBroker()  # a fresh broker per round: every consumer reads exactly N
        bootstrap = broker.start()
        bus = EventBus.from_settings(KitSettings(kafka_bootstrap=bootstrap, redis_url=redis_url), "bench")
        try:
            rows["raw produce"].append(await asyncio.to_thread(raw_produce, bootstrap, values))
            rows["bus publish"].append(await bus_produce(bus, args.messages))
            total = 2 * args.messages
            rows["raw consume"].append(await asyncio.to_thread(raw_consume, bootstrap, total))
            rows["bus consume"].append(await bus_consume(bus, total))
        finally:
            await bus.close()
            broker.stop()
        print(f"round {rnd + 1}: " + "  ".join(f"{k} {v[-1]:7.0f}/s" for k, v in rows.items()))
    if private is not None:
        private.stop()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\nmedian of {args.rounds} rounds, {args.messages} messages produced per path")
    print(f"{'path':<14}{'msgs/s':>10}{'vs raw':>9}")
    for raw, kit in (("raw produce", "bus publish"), ("raw consume", "bus consume")):
        print(f"{raw:<14}{med[raw]:10.0f}{1:8.2f}x")
        print(f"{kit:<14}{med[kit]:10.0f}{med[kit] / med[raw]:8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
