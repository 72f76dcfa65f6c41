"""Training smoke on a small slice of the shipped data, the checkpoint, and the Recommender inference API."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from creatormesh.ranking.data import DEFAULT_DATA_DIR, load_dataset, split_dataset, top_genres
from creatormesh.ranking.metrics import recall_at_k, top_k
from creatormesh.ranking.recommender import ItemContent, Recommender, UserContext
from creatormesh.ranking.train import TrainConfig, train


@pytest.fixture(scope="module")
def rec(trained_model: Path) -> Recommender:
    return Recommender.load(trained_model)


def test_checkpoint_files_and_metadata(trained_model: Path) -> None:
    for name in ("two_tower.safetensors", "sequence.safetensors", "items.safetensors", "metadata.json"):
        assert (trained_model / name).is_file(), name
    meta = json.loads((trained_model / "metadata.json").read_text())
    assert meta["version"].startswith("rk-")
    assert meta["data"]["name"] == "movielens-small" and meta["data"]["max_users"] == 40
    assert meta["data"]["rows"]["test"] == 200 and meta["config"]["two_tower"]["dim"] == 16
    assert {"genres", "tags", "items", "users"} <= set(meta["vocabularies"])
    assert set(meta["calibration"]) == {"two_tower", "sequence"}
    assert meta["blend"]["two_tower"] + meta["blend"]["sequence"] == pytest.approx(1.0)
    assert set(meta["validation"]) == {"two_tower", "sequence", "blend"}
    row = meta["items"][0]
    assert {"id", "title", "genres", "tags", "count", "quality"} <= set(row)
    assert 0.0 <= row["quality"] <= 1.0


def test_load_is_fast_and_reload_gives_identical_scores(trained_model: Path, rec: Recommender) -> None:
    start = time.perf_counter()
    again = Recommender.load(trained_model)
    assert time.perf_counter() - start < 2.0
    assert again.version == rec.version and again.dim == 16
    user = UserContext("1", ("comedy",), tuple(rec.item_ids[:7]))
    items = rec.catalog()[:50]
    assert np.array_equal(again.user_vector(user), rec.user_vector(user))
    assert np.array_equal(again.item_vectors(items), rec.item_vectors(items))
    assert np.array_equal(again.sequence_scores(user, items), rec.sequence_scores(user, items))


def test_reloaded_model_reproduces_the_validation_metrics(rec: Recommender) -> None:
    data = load_dataset(max_users=40)
    split = split_dataset(data, 5)
    users = split.eval_users("validation")
    contexts = [
        UserContext(u, top_genres(split.history(u, "validation"), data.items), tuple(split.history(u, "validation")))
        for u in users
    ]
    index = {i: k for k, i in enumerate(rec.item_ids)}
    tt, seq = rec.catalogue_scores(contexts)
    blend = rec.learned_scores(tt, seq)
    recalls = []
    for row, ctx, u in zip(blend, contexts, users, strict=True):
        ranked = [rec.item_ids[i] for i in top_k(row, 50, np.array([index[i] for i in ctx.history]))]
        recalls.append(recall_at_k(ranked, split.targets(u, "validation"), 50))
    assert float(np.mean(recalls)) == pytest.approx(rec.metadata["validation"]["blend"]["recall@50"], abs=0.011)


def test_learned_model_beats_random_on_the_small_slice(rec: Recommender) -> None:
    data = load_dataset(max_users=40)
    split = split_dataset(data, 5)
    users = split.eval_users("test")
    contexts = [
        UserContext(u, top_genres(split.history(u, "validation"), data.items), tuple(split.history(u, "test")))
        for u in users
    ]
    index = {i: k for k, i in enumerate(rec.item_ids)}
    blend = rec.learned_scores(*rec.catalogue_scores(contexts))
    rng = np.random.default_rng(0)
    model, random = [], []
    for row, ctx, u in zip(blend, contexts, users, strict=True):
        seen = np.array([index[i] for i in ctx.history])
        targets = split.targets(u, "test")
        model.append(recall_at_k([rec.item_ids[i] for i in top_k(row, 50, seen)], targets, 50))
        random.append(recall_at_k([rec.item_ids[i] for i in top_k(rng.random(len(row)), 50, seen)], targets, 50))
    chance = 50 / len(rec.item_ids)  # expected Recall@50 of a random ranking
    assert np.mean(model) > 3 * max(float(np.mean(random)), chance)


def test_unknown_users_and_items_get_finite_unit_vectors(rec: Recommender) -> None:
    users = [
        UserContext("never-seen"),
        UserContext("never-seen", interests=("comedy", "#space", "unknown-interest")),
        UserContext("never-seen", history=("no-such-item", rec.item_ids[0])),
        UserContext("1", history=tuple(rec.item_ids[:60])),
    ]
    for user in users:
        v = rec.user_vector(user)
        assert v.shape == (16,) and np.isfinite(v).all()
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    known = rec.catalog()[0]
    items = [
        ItemContent("brand-new", genres=("comedy",), hashtags=("funny",), text="A cat falls off a sofa", quality=0.9),
        ItemContent("bare-new"),
        ItemContent(known.item_id, known.genres, known.hashtags, known.text, engagement_rate=0.4),
        known,
    ]
    vectors = rec.item_vectors(items)
    assert vectors.shape == (4, 16) and np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[3], rec.item_vectors(rec.catalog()[:1])[0])  # cached vector
    assert not np.array_equal(vectors[2], vectors[3])  # changed content is recomputed


def test_scores_are_calibrated_and_independent_of_the_candidate_set(rec: Recommender) -> None:
    user = UserContext("1", ("drama",), tuple(rec.item_ids[:10]))
    catalog = rec.catalog()
    u = rec.user_vector(user)
    all_tt = rec.two_tower_scores(u, rec.item_vectors(catalog[:200]))
    some_tt = rec.two_tower_scores(u, rec.item_vectors(catalog[50:60]))
    np.testing.assert_allclose(all_tt[50:60], some_tt)
    all_seq = rec.sequence_scores(user, catalog[:200])
    np.testing.assert_allclose(all_seq[50:60], rec.sequence_scores(user, catalog[50:60]))
    for scores in (all_tt, all_seq, rec.learned_scores(all_tt, all_seq)):
        assert scores.dtype == np.float64 and ((scores >= 0) & (scores <= 1)).all()
    assert all_seq.std() > 0
    neutral = rec.learned_scores(all_tt, np.full(len(all_tt), 0.5))  # monotone in the two-tower score
    assert np.array_equal(np.argsort(-neutral, kind="stable"), np.argsort(-all_tt, kind="stable"))


def test_sequence_without_history_is_neutral_and_top_excludes(rec: Recommender) -> None:
    items = rec.catalog()[:5]
    assert rec.sequence_scores(UserContext("x"), items).tolist() == [0.5] * 5
    assert rec.sequence_scores(UserContext("x", history=("unknown",)), items).tolist() == [0.5] * 5
    assert rec.sequence_top(UserContext("x"), 10) == []
    history = tuple(rec.item_ids[:5])
    top = rec.sequence_top(UserContext("1", history=history), 20, exclude=rec.item_ids[5:8])
    assert len(top) == 20 and len(set(top)) == 20
    assert not set(top) & set(rec.item_ids[:8])


def test_inference_is_fast_and_thread_safe(rec: Recommender) -> None:
    candidates = rec.catalog()[:300]
    user = UserContext("3", ("comedy",), tuple(rec.item_ids[100:150]))
    rec.item_vectors(candidates)
    start = time.perf_counter()
    for _ in range(10):
        rec.user_vector(user)
        rec.sequence_scores(user, candidates)
    assert (time.perf_counter() - start) / 10 < 0.05
    expected = rec.sequence_scores(user, candidates)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: rec.sequence_scores(user, candidates), range(16)))
    assert all(np.array_equal(r, expected) for r in results)


def test_training_is_reproducible(tmp_path: Path) -> None:
    tiny = TrainConfig(max_users=6, epochs=1, dim=8, batch_size=128, progress=False)
    first = train(DEFAULT_DATA_DIR, tmp_path / "a", tiny)
    second = train(DEFAULT_DATA_DIR, tmp_path / "b", tiny)
    assert first.version == second.version


def test_one_user_and_batch_paths_agree_with_unknown_history_items(rec: Recommender) -> None:
    history = tuple(x for i in rec.item_ids[:60] for x in (i, f"live-{i}"))  # 120 items, half unknown
    user = UserContext("1", ("comedy",), history)
    tt, seq = rec.catalogue_scores([user, UserContext("2")])
    np.testing.assert_allclose(rec.sequence_scores(user, rec.catalog()), seq[0], rtol=1e-6)
    single = rec.two_tower_scores(rec.user_vector(user), rec.item_vectors(rec.catalog()))
    np.testing.assert_allclose(single, tt[0], atol=1e-6)
