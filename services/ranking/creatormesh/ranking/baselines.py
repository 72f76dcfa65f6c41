"""Non-learned baselines over a binary user × item matrix: popularity, item-kNN (cosine) and EASE (Steck 2019).

Each scorer is fitted on training histories (lists of item indices into the catalogue) and scores
histories it is given: ``scores(histories) -> (n_users, n_items)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray


class Scorer(Protocol):
    name: str

    def scores(self, histories: Sequence[Sequence[int]]) -> NDArray[np.float32]: ...


def interaction_matrix(histories: Sequence[Sequence[int]], n_items: int) -> NDArray[np.float32]:
    """Binary (n_users, n_items) matrix: 1 where the user interacted with the item."""
    x = np.zeros((len(histories), n_items), dtype=np.float32)
    for row, items in enumerate(histories):
        x[row, list(items)] = 1.0
    return x


class Popularity:
    """Score = number of training users who interacted with the item."""

    name = "popularity"

    def __init__(self, counts: NDArray[np.float32]) -> None:
        self.counts = counts.astype(np.float32)

    @classmethod
    def fit(cls, histories: Sequence[Sequence[int]], n_items: int) -> Popularity:
        return cls(interaction_matrix(histories, n_items).sum(axis=0))

    def scores(self, histories: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        return np.tile(self.counts, (len(histories), 1))


class ItemKNN:
    """Item-based CF: summed cosine similarity (with shrinkage) to the history items, each item keeping only its
    top ``neighbours``."""

    name = "item-kNN"

    def __init__(self, indices: NDArray[np.int64], values: NDArray[np.float32], n_items: int) -> None:
        self.indices = indices  # (n_items, k) neighbour item indices
        self.values = values  # (n_items, k) similarities
        self.n_items = n_items

    @classmethod
    def fit(
        cls, histories: Sequence[Sequence[int]], n_items: int, neighbours: int = 100, shrink: float = 10.0
    ) -> ItemKNN:
        x = torch.from_numpy(interaction_matrix(histories, n_items))
        gram = x.T @ x
        norms = torch.sqrt(torch.diagonal(gram).clamp(min=1e-9))
        sim = gram / (norms[:, None] * norms[None, :] + shrink)
        sim.fill_diagonal_(0.0)
        k = min(neighbours, max(n_items - 1, 1))
        values, indices = torch.topk(sim, k, dim=1)
        return cls(indices.numpy().astype(np.int64), values.numpy().astype(np.float32), n_items)

    def scores(self, histories: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for row, history in enumerate(histories):
            items = list(set(history))
            if items:
                np.add.at(out[row], self.indices[items].ravel(), self.values[items].ravel())
        return out


class EASE:
    """Embarrassingly Shallow Autoencoder: B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, zero diagonal.

    Items without training interactions are left out of the inverse (their scores are 0).
    """

    name = "EASE"

    def __init__(self, weights: NDArray[np.float32], lam: float) -> None:
        self.weights = weights
        self.lam = lam

    @staticmethod
    def gram(histories: Sequence[Sequence[int]], n_items: int) -> NDArray[np.float32]:
        x = torch.from_numpy(interaction_matrix(histories, n_items))
        return (x.T @ x).numpy()

    @classmethod
    def fit(cls, histories: Sequence[Sequence[int]], n_items: int, lam: float = 500.0) -> EASE:
        return cls.from_gram(cls.gram(histories, n_items), lam)

    @classmethod
    def from_gram(cls, gram: NDArray[np.float32], lam: float) -> EASE:
        n = gram.shape[0]
        used = np.flatnonzero(np.diagonal(gram) > 0)
        g = torch.from_numpy(gram[np.ix_(used, used)].astype(np.float32))
        g.diagonal().add_(lam)
        p = torch.linalg.inv(g)
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        weights = np.zeros((n, n), dtype=np.float32)
        weights[np.ix_(used, used)] = b.numpy()
        return cls(weights, lam)

    def scores(self, histories: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        x = torch.from_numpy(interaction_matrix(histories, self.weights.shape[0]))
        return (x @ torch.from_numpy(self.weights)).numpy()
