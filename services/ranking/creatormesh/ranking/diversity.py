"""Diversity: MMR re-ranking over genre/creator feature sets, intra-list diversity and genre coverage.

An item's features are a set of labels: its genres/hashtags plus ``"creator:<id>"``. Similarity between two items
is the Jaccard index of their sets (0 when either set is empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
from numpy.typing import NDArray

CREATOR_PREFIX = "creator:"


def _label_matrix(features: Sequence[frozenset[str]]) -> tuple[NDArray[np.float64], list[list[int]]]:
    """One 0/1 row per distinct label, one column per item; and each item's label rows."""
    labels: dict[str, int] = {}
    cells = [[labels.setdefault(label, len(labels)) for label in item] for item in features]
    rows = np.fromiter(chain.from_iterable(cells), dtype=np.intp)
    items = np.repeat(np.arange(len(cells)), [len(item) for item in cells])
    matrix = np.zeros((max(len(labels), 1), len(features)), dtype=np.float64)
    matrix[rows, items] = 1.0
    return matrix, cells


def mmr(
    relevance: NDArray[np.float64], features: Sequence[frozenset[str]], k: int, strength: float
) -> tuple[list[int], list[float]]:
    """Greedy Maximal Marginal Relevance: repeatedly pick argmax (1-λ)·rel_i − λ·max_{j chosen} sim(i, j), λ=strength.

    Returns the chosen indices in order and each one's diversity penalty: rel_i minus its MMR value at selection
    time rescaled to the relevance scale (divided by 1-λ), i.e. λ/(1-λ)·max sim — ≥ 0, and 0 for λ=0, for the first
    pick and for items unlike every earlier pick (for λ=1, where relevance is ignored, the penalty is the max sim).
    λ=0 gives exactly the relevance order (stable on ties); equal MMR values go to the lower index.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    rel = np.asarray(relevance, dtype=np.float64).reshape(-1)
    n = rel.shape[0]
    if len(features) != n:
        raise ValueError(f"{n} relevance scores but {len(features)} feature sets")
    k = max(0, min(k, n))
    if strength == 0.0 or k == 0:
        order = np.argsort(-rel, kind="stable")[:k]
        return order.tolist(), [0.0] * k
    scale = strength / (1.0 - strength) if strength < 1.0 else 1.0
    base = (1.0 - strength) * rel
    by_label, cells = _label_matrix(features)
    sizes = by_label.sum(axis=0)
    rows = list(by_label)  # plain row views: cheaper to add than a fancy-indexed sum for a few labels
    score = base.copy()  # base − λ·max sim to the chosen items; -inf once chosen
    chosen: list[int] = []
    penalties: list[float] = []
    for _ in range(k):
        best = int(score.argmax())  # first index among equal scores
        chosen.append(best)
        penalties.append((float(base[best]) - float(score[best])) / strength * scale)
        labels = cells[best]
        if labels:  # Jaccard with the new pick: |A∩B| / (|A| + |B| − |A∩B|); the union is ≥ 1 here
            inter = rows[labels[0]]
            for label in labels[1:]:
                inter = inter + rows[label]
            sim = inter / (sizes + (len(labels) - inter))
            np.minimum(score, base - strength * sim, out=score)
        score[best] = -np.inf
    return chosen, penalties


def intra_list_diversity(features: Sequence[frozenset[str]]) -> float:
    """Mean pairwise (1 − Jaccard) over the list; 0 for fewer than two items."""
    n = len(features)
    if n < 2:
        return 0.0
    by_label, _ = _label_matrix(features)
    sizes = by_label.sum(axis=0)
    inter = by_label.T @ by_label
    union = sizes[:, None] + sizes[None, :] - inter
    sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - sim[upper]))


def _genres(features: Sequence[frozenset[str]]) -> set[str]:
    return {label for labels in features for label in labels if not label.startswith(CREATOR_PREFIX)}


def coverage(chosen: Sequence[frozenset[str]], candidates: Sequence[frozenset[str]]) -> float:
    """Share of the candidates' distinct genre labels (creator labels ignored) present in the chosen items;
    1.0 when the candidates have none."""
    pool = _genres(candidates)
    if not pool:
        return 1.0
    return len(_genres(chosen) & pool) / len(pool)
