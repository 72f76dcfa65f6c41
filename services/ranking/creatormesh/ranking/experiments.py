"""Per-arm outcome counters of the A/B experiments, kept in Redis so arms can be compared.

``{prefix}:ab:{experiment}:{arm}`` is a hash of interaction type → count, plus ``watch_seconds``
and ``users`` (a HyperLogLog ``{prefix}:ab:{experiment}:{arm}:users`` counts distinct users).
Written by the interactions consumer once per applied event (duplicates are skipped upstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENGAGED = ("like", "share", "comment", "complete", "replay", "follow")


@dataclass(frozen=True)
class ArmOutcome:
    experiment: str
    arm: str
    users: int
    counts: dict[str, int]
    watch_seconds: float

    @property
    def interactions(self) -> int:
        return sum(self.counts.values())

    @property
    def engagement_rate(self) -> float:
        """Engaged interactions (like, share, comment, complete, replay, follow) per interaction."""
        return sum(self.counts.get(t, 0) for t in ENGAGED) / self.interactions if self.interactions else 0.0


class ArmLog:
    def __init__(self, redis: Any, prefix: str = "ranking") -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, experiment: str, arm: str) -> str:
        return f"{self.prefix}:ab:{experiment}:{arm}"

    async def record(self, experiment: str, arm: str, user_id: str, kind: str, watch_seconds: float) -> None:
        if not experiment or not arm:
            return
        key = self._key(experiment, arm)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, kind, 1)
            pipe.hincrbyfloat(key, "watch_seconds", watch_seconds)
            pipe.pfadd(key + ":users", user_id)
            pipe.sadd(f"{self.prefix}:ab:{experiment}", arm)
            await pipe.execute()

    async def outcomes(self, experiment: str) -> list[ArmOutcome]:
        arms = sorted(a.decode() for a in await self.redis.smembers(f"{self.prefix}:ab:{experiment}"))
        out = []
        for arm in arms:
            raw = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(self._key(experiment, arm))).items()}
            watch = float(raw.pop("watch_seconds", 0.0))
            users = int(await self.redis.pfcount(self._key(experiment, arm) + ":users"))
            out.append(ArmOutcome(experiment, arm, users, {k: int(v) for k, v in raw.items()}, watch))
        return out
