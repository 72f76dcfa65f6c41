"""A page's items in protobuf wire format, written directly: setting a 50-item response's ~600 fields one by one
from Python was the largest cost of a RankForYou call after gRPC itself. Each item's fixed part (id, creator,
labels) is encoded once per item object and kept; its scores go through one ``struct`` pack. The caller parses
the bytes into the response message in C (``MergeFromString``), which gives exactly the message built field by
field (tested).

Wire layout (ranking.proto): ``RankedItem`` = item_id 1, rank 2, score 3, breakdown 4, creator_id 5, genres 6;
``ScoreBreakdown`` = seven doubles, fields 1-7, all written (an explicit 0.0 parses as the default).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.ranker import ScoredItem

ITEMS_FIELD = 1  # RankForYouResponse.items
_LEN, _I64 = 2, 1  # wire types: length-delimited, 64-bit
_SCORES = struct.Struct("<Bd" + "BB" + "Bd" * 7)  # score (field 3), breakdown (field 4) header, its 7 doubles
_BREAKDOWN_SIZE = 7 * 9
_CACHE_MAX = 50_000


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> int:
    return (field << 3) | wire_type


def _text(field: int, value: str) -> bytes:
    raw = value.encode()
    return bytes([_key(field, _LEN)]) + varint(len(raw)) + raw


def fixed_part(meta: ItemMeta) -> bytes:
    """item_id, creator_id (when known) and the sorted labels of one item."""
    parts = [_text(1, meta.item_id)]
    if meta.creator_id:
        parts.append(_text(5, meta.creator_id))
    parts.extend(_text(6, label) for label in meta.sorted_labels)
    return b"".join(parts)


_RANKS = [b""] + [bytes([_key(2, 0)]) + varint(rank) for rank in range(1, 1025)]
_ITEM_TAG = bytes([_key(ITEMS_FIELD, _LEN)])
_SCORE_KEYS = (_key(3, _I64), _key(4, _LEN), _BREAKDOWN_SIZE, *(_key(f, _I64) for f in range(1, 8)))


class PageEncoder:
    """Encodes pages' items, keeping the fixed part of the catalogue's item objects: they are long-lived, so the
    bounded cache is keyed by identity (holding the object, so an id cannot be reused). A request's own
    candidates are new objects on every call and are encoded without the cache."""

    def __init__(self, max_items: int = _CACHE_MAX) -> None:
        self._fixed: dict[int, tuple[ItemMeta, bytes]] = {}
        self._max = max_items

    def _fixed_of(self, meta: ItemMeta) -> bytes:
        """The cached fixed part of a catalogue item."""
        hit = self._fixed.get(id(meta))
        if hit is not None and hit[0] is meta:
            return hit[1]
        if len(self._fixed) >= self._max:
            self._fixed.clear()
        raw = fixed_part(meta)
        self._fixed[id(meta)] = (meta, raw)
        return raw

    def items(self, items: Sequence[ScoredItem], blend_weight: float, *, catalogue: bool) -> bytes:
        """The ``items`` field of a RankForYouResponse (ranks from 1) as wire bytes; ``catalogue``: the item
        objects are the catalogue's (cache their fixed parts)."""
        pack, keys, out = _SCORES.pack, _SCORE_KEYS, []
        fixed = self._fixed_of if catalogue else fixed_part
        k3, k4, size, b1, b2, b3, b4, b5, b6, b7 = keys
        for rank, s in enumerate(items, 1):
            body = b"".join((
                _RANKS[rank] if rank < len(_RANKS) else bytes([_key(2, 0)]) + varint(rank),
                pack(k3, s.score, k4, size, b1, s.two_tower, b2, s.sequence, b3, s.quality, b4, s.freshness,
                     b5, s.interest_match, b6, blend_weight, b7, s.diversity_penalty),
                fixed(s.item),
            ))  # fmt: skip
            out.append(_ITEM_TAG + varint(len(body)) + body)
        return b"".join(out)
