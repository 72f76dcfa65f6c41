"""Items as column arrays: each item has a slot (a row) holding its quality, publication time, brand-safety
flag, creator code, genre bits, label codes and model vectors, so a page's scoring and diversity work is
array arithmetic over its candidates' rows instead of a Python loop over item objects.

Not thread-safe by itself: the catalogue serialises writers and readers around it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from creatormesh.ranking.catalog import ItemMeta

NO_CODE = -1  # padding in label-code rows; an item without a creator
LOCAL_CODES = 1 << 30  # codes for labels/creators the catalogue has not seen (a request's own items) start here
WORD = 64  # genres per uint64 word of genre bits
_Array = TypeVar("_Array", bound=np.ndarray[Any, Any])


@dataclass(frozen=True)
class ItemRows:
    """Column arrays of some items, in a given order.

    ``genres`` is a bit set per item ((n, words) uint64, one bit per genre); ``labels`` the codes of the
    item's genres + hashtags ((n, width), ``NO_CODE``-padded); ``creator`` a creator code or ``NO_CODE``;
    ``published`` NaN when unknown; ``vectors`` the model vectors by name. Row i's item is
    ``source[at[i]]`` (the item objects are only looked up for the rows that make a page)."""

    source: Sequence[ItemMeta]
    at: NDArray[np.intp]
    quality: NDArray[np.float64]
    published: NDArray[np.float64]
    blocked: NDArray[np.bool_]
    creator: NDArray[np.int64]
    genres: NDArray[np.uint64]
    labels: NDArray[np.int64]
    vectors: Mapping[str, NDArray[np.float32]]

    def __len__(self) -> int:
        return len(self.at)

    def metas(self, rows: NDArray[np.intp]) -> list[ItemMeta]:
        source = self.source
        return [source[i] for i in self.at[rows].tolist()]

    def take(self, keep: NDArray[np.intp]) -> ItemRows:
        return ItemRows(
            self.source, self.at[keep], self.quality[keep], self.published[keep], self.blocked[keep],
            self.creator[keep], self.genres[keep], self.labels[keep], {k: v[keep] for k, v in self.vectors.items()},
        )  # fmt: skip


def genre_bits(positions: Sequence[Sequence[int]], words: int) -> NDArray[np.uint64]:
    """(n, words) bit sets with the given bit positions set."""
    out = np.zeros((len(positions), max(words, 1)), dtype=np.uint64)
    for i, row in enumerate(positions):
        for p in row:
            out[i, p // WORD] |= np.uint64(1 << (p % WORD))
    return out


def _padded(rows: Sequence[Sequence[int]]) -> NDArray[np.int64]:
    out = np.full((len(rows), max(map(len, rows), default=0) or 1), NO_CODE, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class Codes:
    """The catalogue's label, genre and creator codes, plus codes for names it has not seen (kept in this
    object only, so one request's own items cannot grow the catalogue's tables)."""

    def __init__(self, labels: Mapping[str, int], genres: Mapping[str, int], creators: Mapping[str, int]) -> None:
        self._labels, self._genres, self._creators = labels, genres, creators
        self._extra: dict[str, int] = {}
        self._extra_genres: dict[str, int] = {}

    def _local(self, key: str) -> int:
        return self._extra.setdefault(key, LOCAL_CODES + len(self._extra))

    def labels(self, names: Iterable[str]) -> list[int]:
        return [code if (code := self._labels.get(n)) is not None else self._local("l:" + n) for n in names]

    def genres(self, names: Iterable[str]) -> list[int]:
        """Bit positions; unseen genres get positions after the catalogue's."""
        out = []
        for name in names:
            code = self._genres.get(name)
            if code is None:
                code = self._extra_genres.setdefault(name, len(self._genres) + len(self._extra_genres))
            out.append(code)
        return out

    @property
    def genre_words(self) -> int:
        return max(1, math.ceil((len(self._genres) + len(self._extra_genres)) / WORD))

    def creator(self, creator_id: str) -> int:
        if not creator_id:
            return NO_CODE
        code = self._creators.get(creator_id)
        return self._local("c:" + creator_id) if code is None else code


class Columns:
    """The column arrays by slot; capacity doubles as items arrive (readers keep the arrays they took)."""

    def __init__(self, vectors: Mapping[str, int]) -> None:
        self.widths = dict(vectors)
        self.slots: dict[str, int] = {}
        self.metas: list[ItemMeta] = []
        self._label_codes: dict[str, int] = {}
        self._genre_codes: dict[str, int] = {}
        self._creator_codes: dict[str, int] = {}
        self._quality = np.zeros(0)
        self._published = np.zeros(0)
        self._blocked = np.zeros(0, dtype=bool)
        self._creator = np.zeros(0, dtype=np.int64)
        self._genres = np.zeros((0, 1), dtype=np.uint64)
        self._labels = np.zeros((0, 1), dtype=np.int64)
        self._vectors = {k: np.zeros((0, w), dtype=np.float32) for k, w in self.widths.items()}

    def codes(self) -> Codes:
        return Codes(self._label_codes, self._genre_codes, self._creator_codes)

    def store(self, meta: ItemMeta, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        """Write ``meta`` (and its model vectors) into its slot, a new one at the end for a new id."""
        slot = self.slots.get(meta.item_id)
        if slot is None:
            slot = self.slots[meta.item_id] = len(self.metas)
            self.metas.append(meta)
            self._grow(slot + 1)
        else:
            self.metas[slot] = meta
        genres = [self._genre_codes.setdefault(g, len(self._genre_codes)) for g in meta.content.genres]
        labels = [self._label_codes.setdefault(x, len(self._label_codes)) for x in sorted(meta.labels)]
        words = math.ceil(len(self._genre_codes) / WORD)
        if words > self._genres.shape[1]:
            self._genres = np.pad(self._genres, ((0, 0), (0, words - self._genres.shape[1])))
        if len(labels) > self._labels.shape[1]:
            extra = max(len(labels), 2 * self._labels.shape[1]) - self._labels.shape[1]
            self._labels = np.pad(self._labels, ((0, 0), (0, extra)), constant_values=NO_CODE)
        self._quality[slot] = meta.quality
        self._published[slot] = math.nan if meta.published_at is None else meta.published_at
        self._blocked[slot] = meta.blocked
        creator = meta.creator_id
        self._creator[slot] = self._creator_codes.setdefault(creator, len(self._creator_codes)) if creator else NO_CODE
        self._genres[slot] = genre_bits([genres], self._genres.shape[1])[0]
        self._labels[slot] = NO_CODE
        self._labels[slot, : len(labels)] = labels
        for name, vector in vectors.items():
            self._vectors[name][slot] = vector

    def _grow(self, size: int) -> None:
        capacity = self._quality.shape[0]
        if size <= capacity:
            return
        new = max(size, 2 * capacity, 1024)

        def grown(a: _Array, fill: float) -> _Array:
            return cast(_Array, np.pad(a, ((0, new - capacity),) + ((0, 0),) * (a.ndim - 1), constant_values=fill))

        self._quality = grown(self._quality, 0.5)
        self._published = grown(self._published, math.nan)
        self._blocked = grown(self._blocked, True)
        self._creator = grown(self._creator, NO_CODE)
        self._genres = grown(self._genres, 0)
        self._labels = grown(self._labels, NO_CODE)
        self._vectors = {k: grown(v, 0.0) for k, v in self._vectors.items()}

    def rows(self, slots: NDArray[np.intp]) -> ItemRows:
        return ItemRows(
            self.metas, slots, self._quality[slots], self._published[slots],
            self._blocked[slots], self._creator[slots], self._genres[slots], self._labels[slots],
            {k: v[slots] for k, v in self._vectors.items()},
        )  # fmt: skip


def rows_of(metas: Sequence[ItemMeta], codes: Codes, vectors: Mapping[str, NDArray[np.float32]]) -> ItemRows:
    """Rows for items given as objects (a request's own candidates), coded with ``codes``."""
    genres = [codes.genres(m.content.genres) for m in metas]
    return ItemRows(
        metas,
        np.arange(len(metas)),
        np.array([m.quality for m in metas], dtype=np.float64),
        np.array([math.nan if m.published_at is None else m.published_at for m in metas], dtype=np.float64),
        np.array([m.blocked for m in metas], dtype=bool),
        np.array([codes.creator(m.creator_id) for m in metas], dtype=np.int64),
        genre_bits(genres, codes.genre_words),
        _padded([codes.labels(sorted(m.labels)) for m in metas]),
        dict(vectors),
    )
