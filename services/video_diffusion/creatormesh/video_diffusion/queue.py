"""The job queue: a Redis stream read by a consumer group, so delivery is at least once. A delivery stays pending
until its worker acks it; one idle for longer than the lease (its worker died) is reclaimed by another worker, and
one delivered ``max_deliveries`` times without an ack is moved to the ``<key>:dead`` stream. The database, not the
queue, guards against doing a job twice (a worker only completes a job it still owns there).

Works on Redis >= 6.2 (XPENDING IDLE) with the RESP2 client of ``creatormesh.common.redis_pool``."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

DEAD_MAXLEN = 10_000  # dead letters kept for inspection (approximate trim)
RECLAIM_BATCH = 10  # stale deliveries looked at per next() call

# Both act only while ``consumer`` still owns the pending entry: a worker whose delivery was reclaimed can neither
# take it back (heartbeat) nor remove it from under the new owner (ack).
_HEARTBEAT = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
_ACK = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""


_ENQUEUE_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
end
return false
"""
#: How long a consumer waits after a failed read (Redis outage) before it tries again.
RETRY_AFTER_S = 2.0


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queue entry to this consumer; ``deliveries`` is 1 the first time."""

    entry_id: str
    job_id: str
    fields: Mapping[str, str] = field(default_factory=dict)
    deliveries: int = 1


@dataclass(frozen=True)
class QueueDepth:
    waiting: int  # not yet delivered
    pending: int  # delivered, not acked
    dead: int  # dead-lettered


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nogroup(exc: ResponseError) -> bool:
    return "NOGROUP" in str(exc)  # also inside a script error


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class JobQueue:
    """At-least-once job queue on a Redis stream and consumer group (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        *,
        key: str = "creatormesh:video_diffusion:jobs",
        group: str = "workers",
        consumer: str | None = None,
        lease_ms: int = 60_000,
        max_deliveries: int = 3,
    ) -> None:
        if lease_ms <= 0 or max_deliveries < 1:
            raise ValueError("lease_ms must be > 0 and max_deliveries >= 1")
        self.redis = redis
        self.key = key
        self.dead_key = f"{key}:dead"
        self.group = group
        self.consumer = consumer or default_consumer()
        self.lease_ms = lease_ms
        self.max_deliveries = max_deliveries
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._ack = redis.register_script(_ACK)
        self._enqueue_once = redis.register_script(_ENQUEUE_ONCE)

    async def ensure_group(self) -> None:
        """Create the stream and group if missing; the group starts at the beginning, so nothing enqueued before it
        existed is skipped."""
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def enqueue(self, job_id: str, **fields: str) -> str:
        """Append a job; returns the entry id."""
        return _str(await self.redis.xadd(self.key, {"job_id": job_id, **fields}))

    async def enqueue_once(self, job_id: str, ttl_s: int, **fields: str) -> bool:
        """Append a job unless ``job_id`` was enqueued this way in the last ``ttl_s`` seconds (atomically: a
        redelivered request is queued once); True when it was appended."""
        values = [v for pair in {"job_id": job_id, **fields}.items() for v in pair]
        added = await self._enqueue_once(keys=[self.key, f"{self.key}:seen:{job_id}"], args=[ttl_s, *values])
        return bool(added)

    async def take(self, stop: asyncio.Event, block_ms: int = 1000) -> Delivery | None:
        """The next delivery, waiting (and waiting out Redis outages) until there is one; None once ``stop`` is
        set. What a worker loop calls."""
        while not stop.is_set():
            try:
                delivery = await self.next(block_ms=block_ms)
            except Exception as exc:  # noqa: BLE001 — Redis outage: wait and retry
                log.warning("queue %s unavailable: %s", self.key, exc)
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            if delivery is not None:
                return delivery
        return None

    async def next(self, block_ms: int = 0) -> Delivery | None:
        """A stale delivery reclaimed from a dead worker, else a new entry (waiting up to ``block_ms``; 0: no wait).
        Keep ``block_ms`` below the client's socket timeout. Recreates the group if Redis lost it (returns None)."""
        try:
            reclaimed = await self._reclaim()
            if reclaimed is not None:
                return reclaimed
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.key: ">"}, count=1, block=block_ms if block_ms > 0 else None
            )
        except ResponseError as exc:
            if not _nogroup(exc):
                raise
            log.warning("queue group %s on %s missing (Redis restarted?): recreating it", self.group, self.key)
            await self.ensure_group()
            return None
        for _stream, entries in reply or []:
            for entry_id, values in entries:
                return self._delivery(entry_id, values, 1)
        return None

    async def _reclaim(self) -> Delivery | None:
        stale = await self.redis.xpending_range(self.key, self.group, "-", "+", RECLAIM_BATCH, idle=self.lease_ms)
        for info in stale:
            entry_id = _str(info["message_id"])
            # The min-idle check makes the claim atomic: of several workers reclaiming at once, one gets it.
            claimed = await self.redis.xclaim(self.key, self.group, self.consumer, self.lease_ms, [entry_id])
            if not claimed:
                continue  # another worker was first (or, Redis >= 7, the entry was deleted and dropped)
            _id, values = claimed[0]
            if values is None:  # Redis 6.2: the entry was deleted while pending
                await self.redis.xack(self.key, self.group, entry_id)
                continue
            delivery = self._delivery(entry_id, values, int(info["times_delivered"]) + 1)
            if delivery.deliveries <= self.max_deliveries:
                log.info("reclaimed job %s from %s (delivery %d)", delivery.job_id, _str(info["consumer"]),
                         delivery.deliveries)  # fmt: skip
                return delivery
            await self._dead_letter(delivery, _str(info["consumer"]))
        return None

    async def _dead_letter(self, delivery: Delivery, last_consumer: str) -> None:
        reason = f"not acknowledged after {delivery.deliveries - 1} deliveries (max {self.max_deliveries})"
        values = {
            **delivery.fields, "job_id": delivery.job_id, "entry_id": delivery.entry_id,
            "deliveries": str(delivery.deliveries - 1), "last_consumer": last_consumer, "reason": reason,
        }  # fmt: skip
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_key, values, maxlen=DEAD_MAXLEN, approximate=True)
            pipe.xack(self.key, self.group, delivery.entry_id)
            pipe.xdel(self.key, delivery.entry_id)
            await pipe.execute()
        log.warning("job %s dead-lettered: %s", delivery.job_id, reason)

    def _delivery(self, entry_id: Any, values: Mapping[Any, Any], deliveries: int) -> Delivery:
        fields = {_str(k): _str(v) for k, v in values.items()}
        job_id = fields.pop("job_id", "")
        return Delivery(_str(entry_id), job_id, fields, deliveries)

    async def heartbeat(self, delivery: Delivery) -> None:
        """Reset the delivery's idle time so it is not reclaimed while its job runs; does nothing once another
        worker has reclaimed it."""
        if not await self._if_owner(self._heartbeat, delivery):
            log.debug("heartbeat of job %s: delivery %s no longer ours", delivery.job_id, delivery.entry_id)

    async def ack(self, delivery: Delivery) -> bool:
        """Acknowledge and delete the entry. False (and nothing changes) when the delivery is no longer this
        consumer's: it was reclaimed by another worker, which now owns (and will ack) it."""
        return await self._if_owner(self._ack, delivery)

    async def _if_owner(self, script: Any, delivery: Delivery) -> bool:
        """Run an owner-checked script on the delivery; False when it is not (or no longer) this consumer's."""
        try:
            return bool(await script(keys=[self.key], args=[self.group, delivery.entry_id, self.consumer]))
        except ResponseError as exc:
            if _nogroup(exc):
                return False
            raise

    async def depth(self) -> QueueDepth:
        """Entries waiting, pending (delivered, not acked) and dead-lettered."""
        dead = int(await self.redis.xlen(self.dead_key))
        try:
            groups = await self.redis.xinfo_groups(self.key)
        except ResponseError:  # no stream yet
            return QueueDepth(0, 0, dead)
        info = next((g for g in groups if _str(g["name"]) == self.group), None)
        if info is None:
            return QueueDepth(int(await self.redis.xlen(self.key)), 0, dead)
        pending = int(info["pending"])
        lag = info.get("lag")  # Redis >= 7, None when Redis cannot tell
        if lag is None:  # acked entries are deleted, so the stream holds exactly the waiting and pending ones
            lag = max(0, int(await self.redis.xlen(self.key)) - pending)
        return QueueDepth(int(lag), pending, dead)
