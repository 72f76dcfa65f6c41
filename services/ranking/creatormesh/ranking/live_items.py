"""Live items (from `content.scored`) shared by every replica through Redis.

One replica's consumer embeds a new item and stores it here; every replica (the writer too)
loads all stored items at start and then follows the change stream, so an item reaches each
replica's index within milliseconds and survives restarts. Keys:

- ``{prefix}:items`` — hash: item id → JSON (content, creator, publication time, item-tower vector
  as base64 float32 and the version of the model that made it: a replica running another model
  version re-embeds the item from its content);
- ``{prefix}:items:log`` — stream of changed item ids (capped).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.recommender import ItemContent

log = logging.getLogger("creatormesh.ranking.live_items")


@dataclass(frozen=True)
class Stored:
    meta: ItemMeta
    vector: NDArray[np.float32]
    model_version: str


def encode(meta: ItemMeta, vector: NDArray[np.float32], model_version: str) -> str:
    c = meta.content
    return json.dumps(
        {
            "id": c.item_id,
            "genres": list(c.genres),
            "hashtags": list(c.hashtags),
            "text": c.text,
            "title": c.title,
            "engagement_rate": c.engagement_rate,
            "quality": c.quality,
            "creator_id": meta.creator_id,
            "published_at": meta.published_at,
            "blocked": meta.blocked,
            "model_version": model_version,
            "vector": base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode(),
        }
    )


def decode(raw: str | bytes) -> Stored:
    d = json.loads(raw)
    content = ItemContent(
        item_id=d["id"], genres=tuple(d["genres"]), hashtags=tuple(d["hashtags"]), text=d["text"],
        engagement_rate=d["engagement_rate"], quality=d["quality"], title=d.get("title", ""),
    )  # fmt: skip
    vector = np.frombuffer(base64.b64decode(d["vector"]), dtype="<f4").astype(np.float32)
    meta = ItemMeta(content, d["creator_id"], d["published_at"], bool(d.get("blocked", False)))
    return Stored(meta, vector, d.get("model_version", ""))


class LiveItems:
    def __init__(self, redis: Any, *, prefix: str = "ranking", log_maxlen: int = 100_000) -> None:
        self.redis = redis
        self.hash_key = f"{prefix}:items"
        self.log_key = f"{prefix}:items:log"
        self.log_maxlen = log_maxlen

    async def put(self, meta: ItemMeta, vector: NDArray[np.float32], model_version: str) -> None:
        await self.put_many([(meta, vector)], model_version)

    async def put_many(self, items: Sequence[tuple[ItemMeta, NDArray[np.float32]]], model_version: str) -> None:
        """Store ``items`` and announce them, in one transaction."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for meta, vector in items:
                pipe.hset(self.hash_key, meta.item_id, encode(meta, vector, model_version))
                pipe.xadd(self.log_key, {"id": meta.item_id}, maxlen=self.log_maxlen, approximate=True)
            await pipe.execute()

    async def load_all(self) -> tuple[list[Stored], str]:
        """Every stored item and the change-stream position to follow from."""
        last = await self.redis.xrevrange(self.log_key, count=1)
        position = last[0][0].decode() if last else "0-0"
        out: list[Stored] = []
        async for _, raw in self.redis.hscan_iter(self.hash_key, count=1000):
            out.append(decode(raw))
        return out, position

    async def follow(self, position: str, apply: Callable[[list[Stored]], None], stop: asyncio.Event) -> None:
        """Apply every change after ``position`` until ``stop`` is set (Redis errors are retried)."""
        while not stop.is_set():
            try:
                batches = await self.redis.xread({self.log_key: position}, count=500, block=1000)
                for _, entries in batches:
                    ids = list(dict.fromkeys(fields[b"id"].decode() for _, fields in entries if b"id" in fields))
                    raws = await self.redis.hmget(self.hash_key, ids) if ids else []
                    apply(_decodable(raws))
                    position = entries[-1][0].decode()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — keep following after a Redis hiccup
                log.warning("live item stream: %s; retrying", exc)
                await asyncio.sleep(1.0)


def _decodable(raws: Sequence[Any]) -> list[Stored]:
    """The stored values that decode; one that does not is logged and skipped (it must not stop the stream)."""
    out = []
    for raw in raws:
        if raw is None:
            continue
        try:
            out.append(decode(raw))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("live item stream: skipping an undecodable item (%r): %s", raw[:80], exc)
    return out
