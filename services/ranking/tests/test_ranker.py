"""The ranker on a trained checkpoint: batches give the same pages as one-by-one ranking, and the column
store, compiled MMR and keyed index search agree with their plain definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creatormesh.ranking.abtest import CONTROL, OVERDRIVE
from creatormesh.ranking.catalog import Catalog, ItemMeta
from creatormesh.ranking.columns import NO_CODE, rows_of
from creatormesh.ranking.diversity import (
    coverage,
    genre_coverage,
    intra_list_diversity,
    list_diversity_codes,
    mmr,
    mmr_codes,
)
from creatormesh.ranking.features import RecentInteraction, UserFeatures
from creatormesh.ranking.index import ItemIndex
from creatormesh.ranking.ranker import (
    Page,
    Ranker,
    RankInput,
    freshness,
    freshness_of,
    interest_match,
    interest_matches,
)
from creatormesh.ranking.recommender import ItemContent, Recommender, UserContext
from creatormesh.ranking.settings import RankingSettings

NOW = 1_750_000_000.0
GENRES = ("comedy", "drama", "gaming", "music", "food")


@pytest.fixture(scope="module")
def ranker(trained_model: Path) -> Ranker:
    rec = Recommender.load(trained_model)
    r = Ranker(rec, ItemIndex(rec.dim, exact_max_items=50), RankingSettings(model_path=str(trained_model)))
    r.add_items([ItemMeta(c) for c in rec.catalog()])  # > 50 items: an HNSW index
    rng = np.random.default_rng(0)
    live = [
        ItemMeta(
            ItemContent(f"live-{i}", genres=(GENRES[i % 5],), hashtags=(f"tag{i % 7}",), quality=float(rng.uniform())),
            creator_id=f"creator-{i % 6}",
            published_at=NOW - float(rng.uniform(0, 5 * 86400)),
            blocked=i % 17 == 0,
        )
        for i in range(120)
    ]
    r.add_items(live)
    return r


def user(ranker: Ranker, user_id: str, n: int, interests: list[str]) -> UserFeatures:
    ids = ranker.recommender.item_ids
    recent = [RecentInteraction(ids[(7 * k + len(user_id)) % len(ids)], "complete", NOW - k, 5.0) for k in range(n)]
    return UserFeatures(user_id, True, n, 0.0, interests, recent, 3600, NOW)


def request(user_id: str, *, arm: str = OVERDRIVE, limit: int = 20, candidates: tuple[ItemMeta, ...] = ()) -> RankInput:
    return RankInput(user_id, candidates, limit, 0.3, frozenset({"live-3"}), arm, NOW)


def same(a: Page, b: Page) -> None:
    assert [s.item.item_id for s in a.items] == [s.item.item_id for s in b.items]
    assert [s.score for s in a.items] == pytest.approx([s.score for s in b.items], abs=1e-6)
    for field in ("user_state", "blend_weight", "source", "considered", "model_version"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.intra_list_diversity == pytest.approx(b.intra_list_diversity)
    assert a.coverage == pytest.approx(b.coverage)


def test_a_batch_ranks_like_one_request_at_a_time(ranker: Ranker) -> None:
    given = (
        ItemMeta(ItemContent("live-5")),  # known: the catalogue fills in the rest
        ItemMeta(ItemContent("brand-new", genres=("comedy",), hashtags=("fresh",), quality=0.9), "creator-x", NOW),
        ItemMeta(ItemContent("live-17")),  # blocked in the catalogue
    )
    cases = [
        (request("warm"), user(ranker, "warm", 30, ["comedy"])),
        (request("cold"), user(ranker, "cold", 0, ["gaming", "music"])),
        (request("half", limit=7), user(ranker, "half", 8, ["drama"])),
        (request("control", arm=CONTROL), user(ranker, "control", 30, ["food"])),
        (request("own", candidates=given), user(ranker, "own", 30, ["comedy"])),
        (request("nobody"), UserFeatures("nobody", False, 0, 0.0, [], [], 0, None)),
    ]
    together = ranker.rank_many([r for r, _ in cases], [f for _, f in cases])
    for (req, features), page in zip(cases, together, strict=True):
        same(page, ranker.rank(req, features))
    warm, cold, half, control, own, nobody = together
    assert len(warm.items) == 20 and len(half.items) == 7
    assert (warm.user_state, cold.user_state, half.blend_weight, control.blend_weight) == ("warm", "cold", 0.4, 0.0)
    assert {s.item.item_id for s in own.items} == {"brand-new", "live-5"}  # live-17 is blocked
    assert len(nobody.items) == 20  # unknown users get the best items overall
    history = set(user(ranker, "warm", 30, []).history)
    for page in together:
        shown = [s.item.item_id for s in page.items]
        assert len(set(shown)) == len(shown)
        assert "live-3" not in shown  # excluded by the request
        assert not any(s.item.blocked for s in page.items)
    assert not history & {s.item.item_id for s in warm.items}
    wanted = frozenset({"gaming", "music"})
    assert [s.interest_match for s in cold.items] == [interest_match(s.item.labels, wanted) for s in cold.items]
    assert sum(s.interest_match > 0 for s in cold.items) >= 10  # cold start: interest-matched items


def test_an_empty_batch_and_a_mismatched_one(ranker: Ranker) -> None:
    assert ranker.rank_many([], []) == []
    with pytest.raises(ValueError, match="2 requests but 1 feature sets"):
        ranker.rank_many([request("a"), request("b")], [user(ranker, "a", 0, [])])


def test_catalogue_rows_follow_upserts_and_skip_unknown_ids() -> None:
    catalog = Catalog(vectors={"v": 2})
    a = ItemMeta(ItemContent("a", genres=("x", "y"), hashtags=("t",), quality=0.9), "c1", 10.0)
    b = ItemMeta(ItemContent("b", genres=("y",), quality=0.2))
    catalog.upsert([a, b], {"v": np.array([[1, 0], [0, 1]], dtype=np.float32)})
    rows = catalog.rows(["b", "nope", "a"])
    assert rows.metas(np.arange(2)) == [b, a]
    assert rows.quality.tolist() == [0.2, 0.9] and np.isnan(rows.published[0]) and rows.published[1] == 10.0
    assert rows.creator[0] == NO_CODE and rows.creator[1] >= 0
    assert rows.vectors["v"].tolist() == [[0, 1], [1, 0]]
    assert np.bitwise_count(rows.genres).sum(axis=1).tolist() == [1, 2]
    assert (rows.genres[0] & rows.genres[1]).any()  # both have "y"
    wider = ItemMeta(ItemContent("a", genres=tuple(f"g{i}" for i in range(70)), hashtags=("t",), quality=0.1))
    catalog.upsert([wider], {"v": np.zeros((1, 2), dtype=np.float32)})  # 71 genres: a second word of bits
    rows = catalog.rows(["a"])
    assert rows.quality.tolist() == [0.1] and int(np.bitwise_count(rows.genres).sum()) == 70
    assert (rows.labels[0] >= 0).sum() == 71
    with pytest.raises(ValueError, match="vectors must be given"):
        catalog.upsert([b])


def test_request_rows_code_unseen_labels_without_growing_the_catalogue() -> None:
    catalog = Catalog()
    catalog.upsert([ItemMeta(ItemContent("a", genres=("x",), quality=0.5))])
    codes = catalog.codes()
    given = [ItemMeta(ItemContent("n", genres=("x", "new"), hashtags=("h",)), "someone")]
    rows = rows_of(given, codes, {})
    assert int(np.bitwise_count(rows.genres).sum()) == 2
    assert codes.labels(["x", "new", "h"]) == codes.labels(["x", "new", "h"])  # stable within one request
    assert catalog.codes().labels(["new"]) != codes.labels(["new"])  # never stored in the catalogue


def bits_and_creators(features: list[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
    genres = sorted({g for f in features for g in f if not g.startswith("creator:")})
    creators = sorted({g for f in features for g in f if g.startswith("creator:")})
    bits = np.zeros((len(features), 1), dtype=np.uint64)
    creator = np.full(len(features), -1, dtype=np.int64)
    for i, f in enumerate(features):
        for g in f:
            if g.startswith("creator:"):
                creator[i] = creators.index(g)
            else:
                bits[i, 0] |= np.uint64(1 << genres.index(g))
    return bits, creator


@pytest.mark.parametrize("seed", range(5))
def test_compiled_mmr_matches_the_set_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    features = [
        frozenset({*rng.choice(GENRES, size=int(rng.integers(0, 3)), replace=False), f"creator:{rng.integers(4)}"})
        for _ in range(60)
    ]
    relevance = rng.uniform(size=60)
    bits, creator = bits_and_creators(features)
    for strength in (0.0, 0.3, 0.7, 1.0):
        picks, penalties = mmr_codes(relevance, bits, creator, 25, strength)
        expected, expected_penalties = mmr(relevance, features, 25, strength)
        assert picks.tolist() == expected
        assert penalties.tolist() == pytest.approx(expected_penalties)
    chosen = picks[:10]
    assert list_diversity_codes(bits[chosen], creator[chosen]) == pytest.approx(
        intra_list_diversity([features[i] for i in chosen])
    )
    assert genre_coverage(bits[chosen], bits) == pytest.approx(coverage([features[i] for i in chosen], features))


def test_keyed_search_returns_the_callers_keys() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ItemIndex(8, exact_max_items=100)
    ids = [f"i{n}" for n in range(300)]
    index.add(ids, vectors, np.arange(300) * 10)
    index.add(ids[:100], vectors[:100], np.arange(100) * 10)  # re-adds keep the keys; dead rows skipped
    queries = vectors[:3]
    keyed = index.search_keys(queries, 20, [{"i0"}, (), ["i2", "i5"]])
    plain = index.search_many(queries, 20, [{"i0"}, (), ["i2", "i5"]])
    for keys, hits in zip(keyed, plain, strict=True):
        assert keys.tolist() == [int(item_id[1:]) * 10 for item_id, _ in hits]
        assert len(keys) == 20
    assert 0 not in keyed[0].tolist() and keyed[1][0] == 10  # i0 excluded; i1 is its own best match


def test_freshness_and_interest_columns(ranker: Ranker) -> None:
    published = np.array([NOW, NOW - 48 * 3600, np.nan, NOW + 10])
    assert freshness_of(published, NOW, 48.0).tolist() == pytest.approx(
        [freshness(p if not np.isnan(p) else None, NOW, 48.0) for p in published]
    )
    catalog = ranker.catalog
    items = [catalog.get(f"live-{i}") for i in range(10)]
    rows = catalog.rows([m.item_id for m in items if m is not None])
    wanted = ["comedy", "tag3", "unknown"]
    got = interest_matches(rows.labels, np.array(catalog.codes().labels(wanted)))
    assert got.tolist() == [interest_match(m.labels, frozenset(wanted)) for m in items if m is not None]


def test_sequence_candidates_come_only_from_the_catalogue_and_follow_it(trained_model: Path) -> None:
    rec = Recommender.load(trained_model)
    r = Ranker(rec, ItemIndex(rec.dim), RankingSettings(model_path=str(trained_model)))
    everything = [ItemMeta(c) for c in rec.catalog()]
    r.add_items(everything[::2])  # half the trained items
    viewer = user(r, "seq", 30, [])
    half = {s.item.item_id for s in r.rank(request("seq", limit=50), viewer).items}
    assert half and half <= {m.item_id for m in everything[::2]}
    r.add_items(everything[1::2])  # the rest arrive: the sequence model may now propose them too
    seen = frozenset({"live-3", *viewer.history})
    states, known = rec.sequence_states([UserContext("seq", (), viewer.history)])
    top = rec.sequence_top_many(states, known, 50, [seen])[0]
    assert len(top) == 50 and set(top) & {m.item_id for m in everything[1::2]}
    rows = r.catalog.rows_at(r._trained_slots()[rec.sequence_top_rows(states, known, 50, [seen])[0]])
    assert [m.item_id for m in rows.metas(np.arange(len(rows)))] == top
