"""ItemIndex: exact search equals brute force, the switch to HNSW past the threshold keeps recall, upserts
replace vectors, exclusions hold, IVF works when forced, and concurrent adds and searches stay consistent."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from creatormesh.ranking.index import ItemIndex

DIM = 16


def unit_vectors(n: int, seed: int, clusters: int = 20) -> np.ndarray:
    """Clustered unit vectors, like item embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, DIM))
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def ids(n: int, start: int = 0) -> list[str]:
    return [f"item-{i}" for i in range(start, start + n)]


def brute_force(vectors: np.ndarray, names: list[str], query: np.ndarray, k: int) -> list[str]:
    scores = vectors @ query
    return [names[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_flat_search_is_exact() -> None:
    x, names = unit_vectors(500, 1), ids(500)
    index = ItemIndex(DIM)
    index.add(names, x)
    assert index.kind == "flat" and len(index) == 500 and "item-7" in index and "nope" not in index
    for q in unit_vectors(10, 2):
        found = index.search(q, 20)
        assert [i for i, _ in found] == brute_force(x, names, q, 20)
        scores = [s for _, s in found]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(float(np.max(x @ q)), abs=1e-5)


def test_switches_to_hnsw_past_the_threshold_and_keeps_recall() -> None:
    x, names = unit_vectors(2000, 3), ids(2000)
    index = ItemIndex(DIM, exact_max_items=1000, ef_construction=64)
    index.add(names[:1000], x[:1000])
    assert index.kind == "flat"
    index.add(names[1000:], x[1000:])
    assert index.kind == "hnsw" and len(index) == 2000
    hits = 0
    queries = unit_vectors(50, 4)
    for q in queries:
        hits += len({i for i, _ in index.search(q, 50)} & set(brute_force(x, names, q, 50)))
    assert hits / (50 * len(queries)) >= 0.95


def test_upsert_replaces_the_vector() -> None:
    x, names = unit_vectors(200, 5), ids(200)
    index = ItemIndex(DIM)
    index.add(names, x)
    target = -x[0]  # opposite of item-0's old vector
    index.add(["item-0"], target[None, :])
    assert len(index) == 200
    np.testing.assert_array_equal(index.vector("item-0"), target)
    found = index.search(target, 200)
    assert found[0][0] == "item-0" and found[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [i for i, _ in found].count("item-0") == 1  # the old row is never returned
    assert index.vector("unknown") is None


def test_duplicates_in_one_batch_last_wins() -> None:
    x = unit_vectors(3, 6)
    index = ItemIndex(DIM)
    index.add(["a", "b", "a"], x)
    assert len(index) == 2
    np.testing.assert_array_equal(index.vector("a"), x[2])


def test_many_replacements_rebuild_and_stay_consistent() -> None:
    names = ids(300)
    index = ItemIndex(DIM, exact_max_items=100, ef_construction=40)
    for round_ in range(6):
        index.add(names, unit_vectors(300, 10 + round_))
    last = unit_vectors(300, 15)
    assert index.kind == "hnsw" and len(index) == 300
    everything = index.search(last[0], 1000)
    assert sorted(i for i, _ in everything) == sorted(names)  # k beyond size: each live item once
    for name, vec in zip(names[:20], last[:20], strict=True):
        np.testing.assert_array_equal(index.vector(name), vec)


def test_exclude_and_k_beyond_size() -> None:
    x, names = unit_vectors(50, 7), ids(50)
    index = ItemIndex(DIM)
    assert index.search(x[0], 10) == []
    index.add(names, x)
    best = index.search(x[0], 5)[0][0]
    excluded = {best, "item-1", "item-2", "not-indexed"}
    found = index.search(x[0], 100, exclude=excluded)
    assert len(found) == 47 and not excluded & {i for i, _ in found}
    assert index.search(x[0], 0) == []
    assert index.search(x[0], 5, exclude=names) == []
    with pytest.raises(ValueError, match="ids"):
        index.add(["a", "b"], x[:3])


def test_ivf_when_forced() -> None:
    x, names = unit_vectors(3000, 8), ids(3000)
    index = ItemIndex(DIM, kind="ivf", nprobe=16)
    index.add(names[:100], x[:100])
    index.add(names[100:], x[100:])  # grows past twice the trained size: retrained
    assert index.kind == "ivf" and len(index) == 3000
    hits = 0
    queries = unit_vectors(30, 9)
    for q in queries:
        hits += len({i for i, _ in index.search(q, 50)} & set(brute_force(x, names, q, 50)))
    assert hits / (50 * len(queries)) >= 0.9


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind"):
        ItemIndex(DIM, kind="lsh")
    with pytest.raises(ValueError, match="dim"):
        ItemIndex(0)


def test_concurrent_adds_and_searches() -> None:
    names = ids(1500)
    index = ItemIndex(DIM, exact_max_items=600, ef_construction=40)
    index.add(names[:300], unit_vectors(300, 20))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for step in range(12):  # new items (crossing the threshold) and replacements
                start = 300 + step * 100
                index.add(names[start : start + 100], unit_vectors(100, 30 + step))
                index.add(names[:100], unit_vectors(100, 60 + step))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        queries = unit_vectors(20, seed)
        try:
            while not stop.is_set():
                for q in queries:
                    found = index.search(q, 30, exclude={"item-0"})
                    got = [i for i, _ in found]
                    assert len(got) == len(set(got)) and "item-0" not in got
                    assert len(got) == 30
                    scores = [s for _, s in found]
                    assert scores == sorted(scores, reverse=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert index.kind == "hnsw" and len(index) == 1500


def test_searches_run_one_openmp_thread_in_any_calling_thread() -> None:
    import faiss

    index = ItemIndex(DIM)
    index.add(ids(10), unit_vectors(10, 40))
    seen: list[int] = []

    def search() -> None:  # a fresh thread starts with OpenMP's default (all cores)
        index.search(unit_vectors(1, 41)[0], 3)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search)
    worker.start()
    worker.join()
    assert seen == [1]
