"""Engagement as new labels: every interaction is logged (Redis stream, for retraining and A/B analysis), counted
per item, and counted towards the next retrain.requested."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Label:
    event_id: str
    user_id: str
    item_id: str
    creator_id: str
    type: str  # view, like, share, comment, skip, complete, replay, follow, click
    watch_fraction: float
    occurred_at: float  # unix seconds
    experiment: str
    arm: str


class LabelLog:
    def __init__(self, redis: Any, prefix: str, max_entries: int = 1_000_000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_entries = max_entries

    @property
    def stream(self) -> str:
        return f"{self.prefix}:interactions"

    async def record(self, label: Label) -> int:
        """Log one interaction; the number of labels since the counter was created (1, 2, ...)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, {"j": json.dumps(asdict(label))}, maxlen=self.max_entries, approximate=True)
            pipe.hincrby(f"{self.prefix}:engagement:{label.item_id}", label.type, 1)
            pipe.incr(f"{self.prefix}:labels:count")
            results = await pipe.execute()
        return int(results[-1])

    async def engagement(self, item_id: str) -> dict[str, int]:
        raw = await self.redis.hgetall(f"{self.prefix}:engagement:{item_id}")
        return {k.decode(): int(v) for k, v in raw.items()}

    async def labels(self, batch: int = 10_000) -> list[Label]:
        out: list[Label] = []
        start = "-"
        while True:
            rows = await self.redis.xrange(self.stream, min=start, max="+", count=batch)
            out.extend(Label(**json.loads(fields[b"j"])) for _, fields in rows)
            if len(rows) < batch:
                return out
            start = "(" + rows[-1][0].decode()

    async def export(self, path: Path) -> int:
        """Write every logged interaction as JSONL (the A/B command's input); the number written."""
        labels = await self.labels()
        await asyncio.to_thread(_write, path, labels)
        return len(labels)


def _write(path: Path, labels: list[Label]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(label)) + "\n" for label in labels))
