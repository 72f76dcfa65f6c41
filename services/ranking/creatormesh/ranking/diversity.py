"""Diversity: MMR re-ranking over genre/creator feature sets, intra-list diversity and genre coverage.

An item's features are a set of labels: its genres/hashtags plus ``"creator:<id>"``. Similarity between two items
is the Jaccard index of their sets (0 when either set is empty).

The ranker holds an item's set as genre bits ((words,) uint64, one bit per genre) plus a creator code (-1 =
none); the greedy MMR loop and the list diversity over that form are compiled with numba (a page's MMR is
~50 picks over ~200 items: in NumPy, the per-step call overhead was most of a page's time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.columns import WORD, genre_bits

CREATOR_PREFIX = "creator:"
_M1, _M2, _M4, _H01 = (
    np.uint64(m) for m in (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101)
)


@numba.njit(cache=True, inline="always")
def _popcount(x: np.uint64) -> int:  # pragma: no cover — compiled
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return int((x * _H01) >> np.uint64(56))


@numba.njit(cache=True, inline="always")
def _similarity(genres, creator, sizes, i, j):  # type: ignore[no-untyped-def]  # pragma: no cover — compiled
    inter = 0
    for w in range(genres.shape[1]):
        inter += _popcount(genres[i, w] & genres[j, w])
    if creator[i] >= 0 and creator[i] == creator[j]:
        inter += 1
    union = sizes[i] + sizes[j] - inter
    return inter / union if union > 0 else 0.0


@numba.njit(cache=True)
def _sizes(genres, creator):  # type: ignore[no-untyped-def]  # pragma: no cover — compiled
    out = np.zeros(genres.shape[0], dtype=np.int64)
    for i in range(genres.shape[0]):
        for w in range(genres.shape[1]):
            out[i] += _popcount(genres[i, w])
        if creator[i] >= 0:
            out[i] += 1
    return out


@numba.njit(cache=True)
def _mmr(relevance, genres, creator, k, strength):  # type: ignore[no-untyped-def]  # pragma: no cover — compiled
    n, words = genres.shape
    sizes = _sizes(genres, creator)
    base = (1.0 - strength) * relevance
    score = base.copy()  # base − λ·max sim to the chosen items
    rescale = 1.0 / (1.0 - strength) if strength < 1.0 else 1.0
    chosen = np.zeros(n, dtype=np.bool_)
    picks = np.empty(k, dtype=np.int64)
    penalties = np.empty(k, dtype=np.float64)
    for t in range(k):
        best, top = -1, -np.inf
        for i in range(n):  # first index among equal scores
            if not chosen[i] and (best < 0 or score[i] > top):
                best, top = i, score[i]
        picks[t] = best
        penalties[t] = (base[best] - top) * rescale
        chosen[best] = True
        if strength == 0.0:
            continue
        for i in range(n):
            if chosen[i]:
                continue
            inter = 0
            for w in range(words):
                inter += _popcount(genres[i, w] & genres[best, w])
            if creator[best] >= 0 and creator[i] == creator[best]:
                inter += 1
            if inter:  # no shared label: similarity 0, and score <= base already
                score[i] = min(score[i], base[i] - strength * (inter / (sizes[i] + sizes[best] - inter)))
    return picks, penalties


@numba.njit(cache=True)
def _list_diversity(genres, creator):  # type: ignore[no-untyped-def]  # pragma: no cover — compiled
    n = genres.shape[0]
    sizes = _sizes(genres, creator)
    total = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            total += 1.0 - _similarity(genres, creator, sizes, i, j)
    return total / (n * (n - 1) / 2)


def mmr_codes(
    relevance: NDArray[np.float64], genres: NDArray[np.uint64], creator: NDArray[np.int64], k: int, strength: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``mmr`` over items given as genre bits ((n, words) uint64) and creator codes ((n,), -1 = none)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    n = relevance.shape[0]
    if genres.shape[0] != n or creator.shape != (n,):
        raise ValueError(f"{n} relevance scores but {genres.shape[0]} genre rows and {creator.shape} creators")
    k = max(0, min(k, n))
    rel = np.ascontiguousarray(relevance, dtype=np.float64)
    bits = np.ascontiguousarray(genres, dtype=np.uint64)
    if not bits.size:
        bits = np.zeros((n, 1), dtype=np.uint64)
    picks, penalties = _mmr(rel, bits, np.ascontiguousarray(creator, dtype=np.int64), k, float(strength))
    return picks, penalties


def list_diversity_codes(genres: NDArray[np.uint64], creator: NDArray[np.int64]) -> float:
    """``intra_list_diversity`` of items given as genre bits and creator codes."""
    if genres.shape[0] < 2:
        return 0.0
    bits = np.ascontiguousarray(genres, dtype=np.uint64)
    return float(_list_diversity(bits, np.ascontiguousarray(creator, dtype=np.int64)))


def genre_coverage(chosen: NDArray[np.uint64], candidates: NDArray[np.uint64]) -> float:
    """``coverage`` from genre bit sets ((n, words)): the share of the candidates' genres the chosen items
    have; 1.0 when the candidates have none."""
    pool = np.bitwise_or.reduce(candidates, axis=0)
    total = int(np.bitwise_count(pool).sum())
    if not total:
        return 1.0
    have = np.bitwise_or.reduce(chosen, axis=0) & pool if len(chosen) else np.zeros_like(pool)
    return int(np.bitwise_count(have).sum()) / total


def _as_bits(features: Sequence[frozenset[str]]) -> NDArray[np.uint64]:
    """Label sets as bit sets (one bit per distinct label)."""
    codes: dict[str, int] = {}
    rows = [[codes.setdefault(label, len(codes)) for label in item] for item in features]
    return genre_bits(rows, -(-len(codes) // WORD))


def mmr(
    relevance: NDArray[np.float64], features: Sequence[frozenset[str]], k: int, strength: float
) -> tuple[list[int], list[float]]:
    """Greedy Maximal Marginal Relevance: repeatedly pick argmax (1-λ)·rel_i − λ·max_{j chosen} sim(i, j), λ=strength.

    Returns the chosen indices in order and each one's diversity penalty: rel_i minus its MMR value at selection
    time rescaled to the relevance scale (divided by 1-λ), i.e. λ/(1-λ)·max sim — ≥ 0, and 0 for λ=0, for the first
    pick and for items unlike every earlier pick (for λ=1, where relevance is ignored, the penalty is the max sim).
    λ=0 gives exactly the relevance order (stable on ties); equal MMR values go to the lower index.
    """
    rel = np.asarray(relevance, dtype=np.float64).reshape(-1)
    if len(features) != rel.shape[0]:
        raise ValueError(f"{rel.shape[0]} relevance scores but {len(features)} feature sets")
    none = np.full(len(features), -1, dtype=np.int64)
    picks, penalties = mmr_codes(rel, _as_bits(features), none, k, strength)
    return picks.tolist(), penalties.tolist()


def intra_list_diversity(features: Sequence[frozenset[str]]) -> float:
    """Mean pairwise (1 − Jaccard) over the list; 0 for fewer than two items."""
    return list_diversity_codes(_as_bits(features), np.full(len(features), -1, dtype=np.int64))


def _genres(features: Sequence[frozenset[str]]) -> set[str]:
    return {label for labels in features for label in labels if not label.startswith(CREATOR_PREFIX)}


def coverage(chosen: Sequence[frozenset[str]], candidates: Sequence[frozenset[str]]) -> float:
    """Share of the candidates' distinct genre labels (creator labels ignored) present in the chosen items;
    1.0 when the candidates have none."""
    pool = _genres(candidates)
    if not pool:
        return 1.0
    return len(_genres(chosen) & pool) / len(pool)
