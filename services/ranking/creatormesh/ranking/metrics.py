"""Top-K quality metrics over ranked lists (binary relevance)."""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.diversity import intra_list_diversity


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Hits in the top ``k`` divided by ``min(k, |relevant|)`` (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / min(k, len(relevant))


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """DCG of the top ``k`` (gain 1/log2(rank+1)) over the best possible DCG."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def coverage_at_k(lists: Sequence[Sequence[Hashable]], catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    if catalogue_size <= 0:
        return 0.0
    return len({item for ranked in lists for item in ranked[:k]}) / catalogue_size


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a∩b| / |a∪b|; two empty sets have similarity 0."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def mean_ild_at_k(lists: Sequence[Sequence[str]], genres: Mapping[str, frozenset[str]], k: int) -> float:
    """Intra-list genre diversity of each top-``k`` list, averaged over lists."""
    if not lists:
        return 0.0
    empty: frozenset[str] = frozenset()
    return float(np.mean([intra_list_diversity([genres.get(i, empty) for i in ranked[:k]]) for ranked in lists]))


def top_k(scores: NDArray[np.floating], k: int, exclude: NDArray[np.intp] | None = None) -> NDArray[np.intp]:
    """Indices of the ``k`` highest scores, best first, skipping ``exclude`` (and -inf scores)."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None and len(exclude):
        s[exclude] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    order = np.lexsort((part, -s[part]))
    return part[order].astype(np.intp)


def score_lists(
    lists: Sequence[Sequence[str]],
    targets: Sequence[Collection[str]],
    catalogue_size: int,
    genres: Mapping[str, frozenset[str]],
) -> dict[str, float]:
    """The evaluation table's columns for one model: mean Recall@10/50, NDCG@10 over users, coverage@10, ILD@10."""
    if not lists:
        return {"recall@10": 0.0, "recall@50": 0.0, "ndcg@10": 0.0, "coverage@10": 0.0, "ild@10": 0.0}
    return {
        "recall@10": float(np.mean([recall_at_k(r, t, 10) for r, t in zip(lists, targets, strict=True)])),
        "recall@50": float(np.mean([recall_at_k(r, t, 50) for r, t in zip(lists, targets, strict=True)])),
        "ndcg@10": float(np.mean([ndcg_at_k(r, t, 10) for r, t in zip(lists, targets, strict=True)])),
        "coverage@10": coverage_at_k(lists, catalogue_size, 10),
        "ild@10": mean_ild_at_k(lists, genres, 10),
    }
