"""Baselines (popularity, item-kNN, EASE closed form) and the metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from creatormesh.ranking.baselines import EASE, ItemKNN, Popularity, interaction_matrix
from creatormesh.ranking.metrics import (
    coverage_at_k,
    intra_list_diversity,
    jaccard,
    mean_ild_at_k,
    ndcg_at_k,
    recall_at_k,
    score_lists,
    top_k,
)

HISTORIES = [[0, 1], [0, 1, 2], [1, 2], [2, 3], [0, 3]]


def test_interaction_matrix_is_binary() -> None:
    x = interaction_matrix([[0, 0, 2], []], 3)
    assert x.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_popularity_counts_users() -> None:
    pop = Popularity.fit(HISTORIES, 5)
    assert pop.counts.tolist() == [3, 3, 3, 2, 0]
    assert pop.scores([[0], []]).shape == (2, 5)


def test_ease_matches_the_closed_form() -> None:
    lam = 2.0
    x = interaction_matrix(HISTORIES, 4).astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(4))
    expected = np.eye(4) - p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    model = EASE.fit(HISTORIES, 4, lam)
    np.testing.assert_allclose(model.weights, expected, atol=1e-5)
    assert np.allclose(np.diag(model.weights), 0.0)
    np.testing.assert_allclose(model.scores([[0, 1]])[0], x[0] @ expected, atol=1e-5)


def test_ease_leaves_items_without_interactions_at_zero() -> None:
    model = EASE.fit(HISTORIES, 6, 1.0)  # items 4 and 5 never occur
    assert not model.weights[4:].any() and not model.weights[:, 4:].any()
    assert model.scores([[0]])[0, 4:].tolist() == [0.0, 0.0]


def test_item_knn_sums_cosine_similarities() -> None:
    knn = ItemKNN.fit(HISTORIES, 4, neighbours=3, shrink=0.0)
    # items 0 and 1 share two of their three users each: cosine 2/3
    s = knn.scores([[0]])[0]
    assert s[1] == pytest.approx(2 / 3, abs=1e-6)
    assert s[2] == pytest.approx(1 / 3, abs=1e-6)
    assert s[0] == 0.0  # no self-similarity
    pruned = ItemKNN.fit(HISTORIES, 4, neighbours=1, shrink=0.0)
    assert np.count_nonzero(pruned.scores([[0]])[0]) == 1


def test_recall_and_ndcg_by_hand() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"b", "x"}, 2) == 0.5
    assert recall_at_k(ranked, {"a", "b", "c"}, 2) == 1.0  # divided by min(k, |relevant|)
    assert recall_at_k(ranked, set(), 2) == 0.0
    # hit at rank 2 of 2 relevant: DCG = 1/log2(3), IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, {"b", "x"}, 10) == pytest.approx(expected)
    assert ndcg_at_k(ranked, {"a"}, 1) == 1.0


def test_coverage_and_diversity_by_hand() -> None:
    assert coverage_at_k([["a", "b"], ["b", "c"]], 10, 2) == 0.3
    assert coverage_at_k([["a", "b"], ["b", "c"]], 10, 1) == 0.2
    assert jaccard(frozenset({"x", "y"}), frozenset({"y"})) == 0.5
    assert jaccard(frozenset(), frozenset()) == 0.0
    # pairs: (xy, y) 0.5, (xy, z) 1, (y, z) 1 → mean 2.5/3
    assert intra_list_diversity([frozenset({"x", "y"}), frozenset({"y"}), frozenset({"z"})]) == pytest.approx(2.5 / 3)
    assert intra_list_diversity([frozenset({"x"})]) == 0.0
    genres = {"a": frozenset({"x"}), "b": frozenset({"x"}), "c": frozenset({"y"})}
    assert mean_ild_at_k([["a", "b"], ["a", "c"]], genres, 2) == 0.5


def test_top_k_excludes_and_orders() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, -np.inf])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 3, np.array([1])).tolist() == [3, 2, 0]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 0]  # -inf is never returned


def test_score_lists_columns() -> None:
    row = score_lists([["a", "b"]], [{"b"}], 4, {"a": frozenset({"x"}), "b": frozenset({"y"})})
    assert row == {
        "recall@10": 1.0,
        "recall@50": 1.0,
        "ndcg@10": pytest.approx(1 / math.log2(3)),
        "coverage@10": 0.5,
        "ild@10": 1.0,
    }
