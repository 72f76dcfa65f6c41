"""The Kafka event bus: enveloped protobuf events, at-least-once transport,
exactly-once effects.

* :meth:`EventBus.publish` wraps a payload in an ``Envelope`` (event id, type,
  time, producer, schema version, trace context) and waits for ``acks=all``.
* :func:`run_consumer` polls one consumer group, skips event ids already
  applied (idempotency keys in Redis, with a TTL), calls the topic's handler,
  marks the event applied and only then commits the offset. A message that
  cannot be decoded, fails validation (:class:`~creatormesh.common.errors.InvalidArgument`)
  or keeps failing after ``consumer_max_attempts`` goes to ``<topic>.dlq`` with
  the reason in its headers, and the consumer moves on.

A handler whose effect lives in Redis should call :meth:`Event.mark_applied_in`
on the pipeline that stores the effect: effect and idempotency key are then one
transaction, so a crash between them cannot apply the event twice. Other
handlers make their effect idempotent by ``event.event_id`` (e.g. a unique key).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from creatormesh.common import context, errors, kafka_compat, metrics, topics
from creatormesh.common.redis_pool import redis_client
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1.envelope_pb2 import Envelope

log = logging.getLogger("creatormesh.bus")
T = TypeVar("T")

SCHEMA_VERSION = 1
CONTENT_TYPE = b"application/x-protobuf"


@dataclass
class Event:
    """One consumed event, decoded."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope
    payload: Any
    group: str
    _applied_key: str
    _ttl: int
    _marked: bool = field(default=False, repr=False)

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    def mark_applied_in(self, pipeline: Any) -> None:
        """Queue the idempotency key on the Redis ``pipeline`` that stores this event's effect."""
        pipeline.set(self._applied_key, b"1", ex=self._ttl)
        self._marked = True


Handler = Callable[[Event], Awaitable[None]]


class _InfrastructureError(Exception):
    """Redis or the broker failed: retry the message later, never dead-letter it."""


class EventBus:
    """Publishes events and owns the consumers' shared resources."""

    def __init__(self, bootstrap: str, producer_name: str, settings: KitSettings) -> None:
        self.bootstrap = bootstrap
        self.producer_name = producer_name
        self.settings = settings
        self._producer: Any = None
        self._send_pool = ThreadPoolExecutor(1, thread_name_prefix="kafka-send")

    @classmethod
    def from_settings(cls, settings: KitSettings, producer_name: str) -> EventBus:
        return cls(settings.kafka_bootstrap, producer_name, settings)

    @property
    def redis(self) -> Any:
        return redis_client(self.settings.redis_url)

    def _get_producer(self) -> Any:
        if self._producer is None:
            self._producer = kafka_compat.producer(self.bootstrap)
        return self._producer

    def envelope(self, payload: Message, subject: str, event_id: str | None = None) -> Envelope:
        env = Envelope(
            event_id=event_id or str(uuid.uuid4()),
            type=payload.DESCRIPTOR.full_name,
            producer=self.producer_name,
            schema_version=SCHEMA_VERSION,
            subject=subject,
            traceparent=context.current_or_new().child().traceparent,
        )
        env.occurred_at.GetCurrentTime()
        env.payload.Pack(payload)
        return env

    async def publish(self, topic: str, payload: Message, *, subject: str, event_id: str | None = None) -> str:
        """Publish ``payload`` on ``topic`` keyed by ``subject``; returns the event id once acknowledged."""
        expected = topics.PAYLOADS.get(topic)
        if expected is not None and payload.DESCRIPTOR.full_name != expected:
            raise errors.InvalidArgument("payload", f"{topic} carries {expected}, not {payload.DESCRIPTOR.full_name}")
        env = self.envelope(payload, subject, event_id)
        headers = [
            ("event-type", env.type.encode()),
            ("event-id", env.event_id.encode()),
            ("traceparent", env.traceparent.encode()),
            ("producer", self.producer_name.encode()),
            ("content-type", CONTENT_TYPE),
        ]
        await self.send_raw(topic, env.SerializeToString(), subject.encode() or None, headers)
        return env.event_id

    async def send_raw(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Send bytes as they are and wait for the broker's acknowledgement."""
        loop = asyncio.get_running_loop()
        future = await loop.run_in_executor(
            self._send_pool,
            functools.partial(self._get_producer().send, topic, value=value, key=key, headers=headers),
        )
        done: asyncio.Future[Any] = loop.create_future()
        future.add_callback(lambda md: loop.call_soon_threadsafe(_resolve, done, md, None))
        future.add_errback(lambda exc: loop.call_soon_threadsafe(_resolve, done, None, exc))
        await done
        metrics.EVENTS_PUBLISHED.labels(topic).inc()

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.get_running_loop().run_in_executor(self._send_pool, functools.partial(producer.close, 10))
        self._send_pool.shutdown(wait=False)


def _resolve(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def decode(topic: str, value: bytes | None) -> tuple[Envelope, Any]:
    """Envelope and payload of a raw message; :class:`InvalidArgument` when it is not a valid event."""
    if not value:
        raise errors.InvalidArgument("value", "empty message")
    try:
        env = Envelope.FromString(value)
    except DecodeError as exc:
        raise errors.InvalidArgument("envelope", f"not a protobuf Envelope ({exc})") from None
    if not env.event_id:
        raise errors.InvalidArgument("envelope.event_id", "missing")
    cls = topics.payload_class(topic)
    if env.type != cls.DESCRIPTOR.full_name or env.payload.TypeName() != cls.DESCRIPTOR.full_name:
        raise errors.InvalidArgument("envelope.type", f"{topic} carries {cls.DESCRIPTOR.full_name}, got {env.type!r}")
    payload = cls()
    try:
        env.payload.Unpack(payload)
    except DecodeError as exc:
        raise errors.InvalidArgument("envelope.payload", f"undecodable {env.type} ({exc})") from None
    return env, payload


def _try_decode(record: Any) -> tuple[Envelope | None, Any, errors.InvalidArgument | None]:
    try:
        env, payload = decode(record.topic, record.value)
    except errors.InvalidArgument as exc:
        return None, None, exc
    return env, payload, None


class _Loop:
    """State of one consumer group's loop (see :func:`run_consumer`)."""

    def __init__(self, bus: EventBus, group: str, handlers: dict[str, Handler]) -> None:
        self.bus = bus
        self.group = group
        self.handlers = handlers
        self.settings = bus.settings
        self.redis = bus.redis
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{group}")
        self.consumer: Any = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a kafka-python call on this loop's own thread (the consumer is not thread-safe)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    def key(self, event_id: str) -> str:
        return f"creatormesh:applied:{self.group}:{event_id}"

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer = await self.call(kafka_compat.consumer, self.bus.bootstrap, self.group, list(self.handlers))
        log.info("consumer group %s subscribed to %s", self.group, ", ".join(self.handlers))
        try:
            while not stop.is_set():
                batch = await self.call(self.consumer.poll, timeout_ms=500)
                if batch:
                    await self.process(batch, stop)
                await self.call(self.export_lag)
        finally:
            await self.call(self.consumer.close, autocommit=False)
            self.pool.shutdown(wait=False)
            log.info("consumer group %s stopped", self.group)

    async def process(self, batch: dict[TopicPartition, list[Any]], stop: asyncio.Event) -> None:
        done: dict[TopicPartition, OffsetAndMetadata] = {}
        try:
            for tp, records in batch.items():
                decoded = [(record, *_try_decode(record)) for record in records]
                try:
                    applied = await self.applied([env.event_id for _, env, _, _ in decoded if env is not None])
                except _InfrastructureError as exc:
                    await self.retry_later(tp, records[0].offset, exc)
                    continue
                for record, env, payload, error in decoded:
                    if stop.is_set():
                        await self.rewind(tp, record.offset)
                        break
                    try:
                        await self.one(record, env, payload, error, applied)
                    except _InfrastructureError as exc:
                        await self.retry_later(tp, record.offset, exc)
                        break
                    done[tp] = OffsetAndMetadata(record.offset + 1, None, -1)
        finally:
            if done:
                try:
                    await self.call(self.consumer.commit, done)
                except Exception as exc:  # noqa: BLE001 — a rebalance: the next owner re-reads, keys dedupe
                    log.warning("commit failed for %s: %s", self.group, exc)

    async def retry_later(self, tp: TopicPartition, offset: int, exc: Exception) -> None:
        log.warning("infrastructure error on %s@%d, will retry: %s", tp, offset, exc)
        await self.rewind(tp, offset)
        await asyncio.sleep(self.settings.consumer_retry_backoff_ms / 1000 or 0.2)

    async def rewind(self, tp: TopicPartition, offset: int) -> None:
        await self.call(self.consumer.seek, tp, offset)

    async def applied(self, event_ids: list[str]) -> set[str]:
        """The ids among ``event_ids`` already applied by this group (one Redis round trip)."""
        if not event_ids:
            return set()
        try:
            found = await self.redis.mget([self.key(e) for e in event_ids])
        except Exception as exc:
            raise _InfrastructureError(f"redis: {exc}") from exc
        return {e for e, hit in zip(event_ids, found, strict=True) if hit is not None}

    async def one(
        self, record: Any, env: Envelope | None, payload: Any, error: errors.InvalidArgument | None, applied: set[str]
    ) -> None:
        topic = record.topic
        if env is None:
            await self.dead_letter(record, "invalid-event", error or errors.InvalidArgument("value", "undecodable"), 0)
            return
        if env.event_id in applied:
            metrics.EVENTS_PROCESSED.labels(topic, self.group, "duplicate").inc()
            return
        key = self.key(env.event_id)
        event = Event(
            topic, record.partition, record.offset, env, payload, self.group, key, self.settings.idempotency_ttl_seconds
        )
        attempts = self.settings.consumer_max_attempts
        backoff = self.settings.consumer_retry_backoff_ms / 1000
        with context.use(context.from_traceparent(env.traceparent, env.event_id)):
            for attempt in range(1, attempts + 1):
                try:
                    await self.handlers[topic](event)
                    break
                except errors.InvalidArgument as exc:
                    metrics.EVENTS_FAILED.labels(topic, self.group).inc()
                    await self.dead_letter(record, "invalid-payload", exc, attempt)
                    return
                except Exception as exc:
                    metrics.EVENTS_FAILED.labels(topic, self.group).inc()
                    log.warning("handler for %s failed (attempt %d/%d): %r", topic, attempt, attempts, exc)
                    if attempt == attempts:
                        log.error("dead-lettering %s after %d attempts", env.event_id, attempts, exc_info=exc)
                        await self.dead_letter(record, "handler-failed", exc, attempt)
                        return
                    await asyncio.sleep(backoff * 2 ** (attempt - 1))
        if not event._marked:
            try:
                await self.redis.set(key, b"1", ex=self.settings.idempotency_ttl_seconds)
            except Exception as exc:
                raise _InfrastructureError(f"redis: {exc}") from exc
        applied.add(env.event_id)  # a second copy later in this batch is a duplicate too
        metrics.EVENTS_PROCESSED.labels(topic, self.group, "applied").inc()

    async def dead_letter(self, record: Any, reason: str, exc: BaseException, attempts: int) -> None:
        headers = [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq-")]
        headers += [
            ("dlq-reason", reason.encode()),
            ("dlq-error", f"{type(exc).__name__}: {exc}"[:2000].encode()),
            ("dlq-source-topic", record.topic.encode()),
            ("dlq-source-partition", str(record.partition).encode()),
            ("dlq-source-offset", str(record.offset).encode()),
            ("dlq-group", self.group.encode()),
            ("dlq-attempts", str(attempts).encode()),
        ]
        try:
            await self.bus.send_raw(topics.dlq(record.topic), record.value or b"", record.key, headers)
        except Exception as err:
            raise _InfrastructureError(f"dlq publish: {err}") from err
        metrics.EVENTS_PROCESSED.labels(record.topic, self.group, "dead_lettered").inc()
        log.warning("sent %s@%d to %s: %s: %s", record.topic, record.offset, topics.dlq(record.topic), reason, exc)

    def export_lag(self) -> None:
        for tp in self.consumer.assignment():
            lag = kafka_compat.partition_lag(self.consumer, tp)
            if lag is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition), self.group).set(lag)


async def run_consumer(bus: EventBus, group: str, handlers: dict[str, Handler], stop: asyncio.Event) -> None:
    """Consume ``handlers``' topics as consumer group ``group`` until ``stop`` is set."""
    unknown = [t for t in handlers if t not in topics.PAYLOADS]
    if unknown:
        raise ValueError(f"no payload type registered for topics {unknown}")
    await _Loop(bus, group, handlers).run(stop)
