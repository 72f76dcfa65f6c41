"""Item metadata the ranker needs (labels, creator, quality, publication time), with an
interest → items table for cold start. Thread-safe: the item consumer writes while requests read.

Every item also has a slot: a row in column arrays (``columns.py``) that page scoring reads.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.columns import Codes, Columns, ItemRows
from creatormesh.ranking.recommender import ItemContent

NEUTRAL = 0.5
_ALL = "\x00all"


@dataclass(frozen=True)
class ItemMeta:
    content: ItemContent
    creator_id: str = ""
    published_at: float | None = None  # epoch seconds
    blocked: bool = False  # brand safety (content.scored): never shown

    @property
    def item_id(self) -> str:
        return self.content.item_id

    @cached_property
    def labels(self) -> frozenset[str]:
        """Genres and hashtags: what interests are matched against."""
        return frozenset(self.content.genres) | frozenset(self.content.hashtags)

    @cached_property
    def sorted_labels(self) -> list[str]:
        """``labels`` in order (what a response lists)."""
        return sorted(self.labels)

    @property
    def quality(self) -> float:
        q = self.content.quality
        return NEUTRAL if q is None else q

    @cached_property
    def diversity(self) -> frozenset[str]:
        """Genres plus the creator: what the MMR re-rank compares."""
        creator = {f"creator:{self.creator_id}"} if self.creator_id else set()
        return frozenset(self.content.genres) | creator

    def merged_over(self, known: ItemMeta | None) -> ItemMeta:
        """This (caller-supplied) item with its missing fields taken from ``known``."""
        if known is None:
            return self
        c, k = self.content, known.content
        content = replace(
            c,
            genres=c.genres or k.genres,
            hashtags=c.hashtags or k.hashtags,
            text=c.text or k.text,
            title=c.title or k.title,
            engagement_rate=k.engagement_rate if c.engagement_rate is None else c.engagement_rate,
            quality=k.quality if c.quality is None else c.quality,
        )
        return ItemMeta(
            content,
            self.creator_id or known.creator_id,
            known.published_at if self.published_at is None else self.published_at,
            known.blocked,
        )


class Catalog:
    """Every rankable item by id, plus per-label lists ordered by quality (best first), plus the items'
    column arrays by slot. ``vectors`` names the model vectors kept per item and their widths."""

    def __init__(self, vectors: Mapping[str, int] | None = None) -> None:
        self._items: dict[str, ItemMeta] = {}
        self._by_label: dict[str, list[tuple[float, str]]] = {}
        self._lock = threading.Lock()
        self._columns = Columns(vectors or {})

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def get(self, item_id: str) -> ItemMeta | None:
        return self._items.get(item_id)

    def upsert(self, items: Sequence[ItemMeta], vectors: Mapping[str, NDArray[np.float32]] | None = None) -> None:
        """Add or replace ``items``; ``vectors`` gives each kept model vector for every item (row i = items[i])."""
        given = dict(vectors or {})
        widths = self._columns.widths
        if set(given) != set(widths):
            raise ValueError(f"vectors must be given for {sorted(widths)}, got {sorted(given)}")
        for name, array in given.items():
            if array.shape != (len(items), widths[name]):
                raise ValueError(f"{name} vectors must be {(len(items), widths[name])}, got {array.shape}")
        with self._lock:
            for k, meta in enumerate(items):
                self._columns.store(meta, {name: array[k] for name, array in given.items()})
                old = self._items.get(meta.item_id)
                if old is not None:
                    for label in (*old.labels, _ALL):
                        entries = self._by_label.get(label, [])
                        i = bisect.bisect_left(entries, (-old.quality, old.item_id))
                        if i < len(entries) and entries[i][1] == old.item_id:
                            del entries[i]
                self._items[meta.item_id] = meta
                if meta.blocked:
                    continue
                for label in (*meta.labels, _ALL):
                    bisect.insort(self._by_label.setdefault(label, []), (-meta.quality, meta.item_id))

    # --- column access -----------------------------------------------------------------------------------

    def codes(self) -> Codes:
        """Label, genre and creator codes for encoding one request's interests and items."""
        with self._lock:
            return self._columns.codes()

    def slots(self, item_ids: Iterable[str]) -> NDArray[np.intp]:
        """The slots of the known items among ``item_ids``, in order (unknown ids are skipped)."""
        slot_of = self._columns.slots.get
        return np.fromiter((s for i in item_ids if (s := slot_of(i)) is not None), dtype=np.intp)

    def slot_map(self) -> Mapping[str, int]:
        """Item id -> slot, live (an item keeps its slot for good)."""
        return self._columns.slots

    def rows(self, item_ids: Iterable[str]) -> ItemRows:
        """The rows of the known items among ``item_ids``, in order (unknown ids are skipped)."""
        return self.rows_at(self.slots(item_ids))

    def rows_at(self, slots: NDArray[np.intp]) -> ItemRows:
        with self._lock:
            return self._columns.rows(slots)

    def best_for(
        self, interests: Sequence[str], n: int, *, min_quality: float = 0.0, exclude: Collection[str] = ()
    ) -> list[str]:
        """Up to ``n`` items matching ``interests`` with quality >= ``min_quality``, best first, taking
        turns between interests so every interest is represented; no interests = the best items overall."""
        labels = [i for i in dict.fromkeys(interests) if i in self._by_label] or [_ALL]
        streams = [iter(self._by_label[label]) for label in labels]
        out: dict[str, None] = {}
        while streams and len(out) < n:
            alive = []
            for stream in streams:
                for neg_q, item_id in stream:
                    if -neg_q < min_quality:
                        break  # lists are quality-ordered: nothing better follows
                    if item_id in out or item_id in exclude:
                        continue
                    out[item_id] = None
                    alive.append(stream)
                    break
                if len(out) >= n:
                    break
            streams = alive
        return list(out)
