"""MMR re-ranking: relevance order at strength 0, the diversity bound at the default strength, penalties,
intra-list diversity and coverage on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from creatormesh.ranking.diversity import coverage, intra_list_diversity, mmr

DEFAULT_STRENGTH = 0.3
OTHER_GENRES = ("drama", "action", "horror", "documentary", "music", "sports", "travel", "food")


def dominated(seed: int = 0) -> tuple[np.ndarray, list[frozenset[str]]]:
    """300 candidates: 60 comedies from 10 creators above every other item in relevance, 240 items of 8 other
    genres from 100 creators below them."""
    rng = np.random.default_rng(seed)
    relevance, features = [], []
    for _ in range(60):
        relevance.append(rng.uniform(0.70, 0.85))
        features.append(frozenset({"comedy", f"creator:c{rng.integers(10)}"}))
    for i in range(240):
        relevance.append(rng.uniform(0.10, 0.70))
        features.append(frozenset({OTHER_GENRES[i % len(OTHER_GENRES)], f"creator:o{rng.integers(100)}"}))
    return np.array(relevance), features


def share(order: list[int], features: list[frozenset[str]], genre: str) -> float:
    return sum(genre in features[i] for i in order) / len(order)


def test_strength_zero_is_the_relevance_order_stable_on_ties() -> None:
    relevance = np.array([0.2, 0.9, 0.5, 0.9, 0.1, 0.5])
    features = [frozenset({"a"})] * 6
    order, penalties = mmr(relevance, features, 6, 0.0)
    assert order == [1, 3, 2, 5, 0, 4]
    assert penalties == [0.0] * 6
    rel, feats = dominated()
    assert mmr(rel, feats, 50, 0.0)[0] == np.argsort(-rel, kind="stable")[:50].tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diversity_bound_one_genre_cannot_take_the_page(seed: int) -> None:
    rel, feats = dominated(seed)
    plain, _ = mmr(rel, feats, 20, 0.0)
    assert share(plain, feats, "comedy") == 1.0
    diverse, penalties = mmr(rel, feats, 20, DEFAULT_STRENGTH)
    assert share(diverse, feats, "comedy") <= 0.5
    assert len(set(diverse)) == 20
    assert diverse[0] == plain[0]  # the best item still leads
    assert penalties[0] == 0.0
    assert all(p >= 0.0 for p in penalties)
    chosen = [feats[i] for i in diverse]
    assert intra_list_diversity(chosen) > intra_list_diversity([feats[i] for i in plain])
    assert coverage(chosen, feats) > coverage([feats[i] for i in plain], feats)


def test_penalty_is_the_rescaled_loss_to_similarity() -> None:
    relevance = np.array([1.0, 0.9, 0.5])
    features = [frozenset({"a", "creator:x"}), frozenset({"a", "creator:x"}), frozenset({"b"})]
    order, penalties = mmr(relevance, features, 3, 0.5)
    # after item 0, item 1 (identical features) scores 0.5·0.9 − 0.5·1 < 0.5·0.5 − 0: the unlike item comes second
    assert order == [0, 2, 1]
    assert penalties == pytest.approx([0.0, 0.0, 1.0])  # λ/(1−λ)·max sim = 1·1
    order, penalties = mmr(relevance, features, 3, 1.0)
    assert order == [0, 2, 1] and penalties == pytest.approx([0.0, 0.0, 1.0])


def test_edge_cases() -> None:
    assert mmr(np.array([]), [], 5, 0.3) == ([], [])
    assert mmr(np.array([0.3, 0.9]), [frozenset(), frozenset()], 5, 0.3)[0] == [1, 0]  # empty sets: sim 0
    with pytest.raises(ValueError, match="strength"):
        mmr(np.array([1.0]), [frozenset()], 1, 1.5)
    with pytest.raises(ValueError, match="feature sets"):
        mmr(np.array([1.0, 2.0]), [frozenset()], 1, 0.3)


def test_intra_list_diversity_hand_cases() -> None:
    a, b = frozenset({"a"}), frozenset({"b"})
    assert intra_list_diversity([]) == 0.0
    assert intra_list_diversity([a]) == 0.0
    assert intra_list_diversity([a, a]) == 0.0
    assert intra_list_diversity([a, b]) == 1.0
    assert intra_list_diversity([frozenset({"a", "b"}), frozenset({"b", "c"})]) == pytest.approx(2 / 3)
    # pairs: (a,a)=0, (a,b)=1, (a,b)=1 → 2/3
    assert intra_list_diversity([a, a, b]) == pytest.approx(2 / 3)
    assert intra_list_diversity([frozenset(), frozenset()]) == 1.0  # empty sets share nothing


def test_coverage_hand_cases() -> None:
    candidates = [frozenset({"a", "creator:1"}), frozenset({"b", "creator:2"}), frozenset({"c", "d"})]
    assert coverage(candidates, candidates) == 1.0
    assert coverage(candidates[:1], candidates) == 0.25  # a of a, b, c, d; creators ignored
    assert coverage([frozenset({"creator:2"})], candidates) == 0.0
    assert coverage([], [frozenset({"creator:1"})]) == 1.0  # candidates without genres
    assert coverage([], []) == 1.0
