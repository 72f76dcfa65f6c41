"""Item retrieval: the ranking service's ItemIndex, exact (flat) against HNSW and IVF, on synthetic embeddings.

Items and queries are unit vectors drawn from the same mixture (1000 Gaussian centres, each with its own spread,
like clustered item embeddings). Per structure: build time (FAISS using --build-threads), then each query is
searched alone through ``ItemIndex.search(query, k)`` on this thread (the service's path: lock, over-fetch,
filter) — p50/p99 latency, single-thread QPS, recall@k against the exact results, speed-up over exact.
HNSW rows vary efSearch on one build; IVF rows vary nprobe on one build.

The default efConstruction is 100 so the run stays under two minutes on two cores; ``--ef-construction 200``
measures the service's own build (about twice the build time).

    .venv/bin/python benchmarks/ranking_index.py [--items 100000] [--queries 1000] [--k 50] [--ef-construction 200]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.index import ItemIndex

GOAL_RECALL = 0.95
CENTRES = 1000


@dataclass
class Row:
    name: str
    recall: float
    p50_ms: float
    p99_ms: float
    qps: float


def mixture(n: int, dim: int, seed: int) -> NDArray[np.float32]:
    """Unit vectors around CENTRES fixed centres (seed 0), noise drawn with `seed`."""
    centres_rng = np.random.default_rng(0)
    centres = centres_rng.standard_normal((CENTRES, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = centres_rng.uniform(0.08, 0.16, CENTRES)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, CENTRES, n)
    x = centres[which] + spread[which, None] * rng.standard_normal((n, dim))
    out: NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def build(kind: str, ids: list[str], x: NDArray[np.float32], args: argparse.Namespace) -> tuple[ItemIndex, float]:
    index = ItemIndex(x.shape[1], kind=kind, ef_construction=args.ef_construction, build_threads=args.build_threads)
    start = time.perf_counter()
    index.add(ids, x)
    return index, time.perf_counter() - start


def measure(
    name: str, index: ItemIndex, queries: NDArray[np.float32], k: int, truth: list[set[str]] | None
) -> tuple[Row, list[set[str]]]:
    for q in queries[:20]:  # warm-up
        index.search(q, k)
    gc.collect()
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        hits = index.search(q, k)
        times.append(time.perf_counter() - start)
        found.append({item_id for item_id, _ in hits})
    recall = 1.0 if truth is None else float(np.mean([len(f & t) / k for f, t in zip(found, truth, strict=True)]))
    ms = np.array(times) * 1e3
    row = Row(name, recall, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(times) / sum(times))
    return row, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument(
        "--ef-construction",
        type=int,
        default=100,
        help="HNSW efConstruction (the service builds with 200: about twice the build time, recall a little higher)",
    )
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256], help="HNSW efSearch values")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128], help="IVF nprobe values")
    parser.add_argument("--build-threads", type=int, default=os.cpu_count() or 1, help="FAISS threads for builds")
    parser.add_argument("--no-ivf", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    x = mixture(args.items, args.dim, seed=1)
    queries = mixture(args.queries, args.dim, seed=2)
    ids = [f"item-{i}" for i in range(args.items)]
    print(
        f"setup: {args.items:,} items, {args.queries:,} queries, dim {args.dim}, {CENTRES} centres "
        f"({time.perf_counter() - start:.1f} s, not timed); searches: 1 thread, k={args.k}"
    )

    builds: list[tuple[str, float]] = []
    flat, seconds = build("flat", ids, x, args)
    builds.append(("flat (IndexFlatIP)", seconds))
    exact, truth = measure("exact (flat)", flat, queries, args.k, None)
    rows = [exact]
    del flat

    hnsw, seconds = build("hnsw", ids, x, args)
    builds.append((f"HNSW M={hnsw.hnsw_m} efConstruction={args.ef_construction}", seconds))
    for ef in args.ef_search:
        hnsw.tune(ef_search=ef)
        rows.append(measure(f"HNSW efSearch={ef}", hnsw, queries, args.k, truth)[0])
    del hnsw

    if not args.no_ivf:
        ivf, seconds = build("ivf", ids, x, args)
        nlist = round(4 * np.sqrt(args.items))
        builds.append((f"IVF nlist≈{nlist} (train + add)", seconds))
        for nprobe in args.nprobe:
            ivf.tune(nprobe=nprobe)
            rows.append(measure(f"IVF nprobe={nprobe}", ivf, queries, args.k, truth)[0])

    print(f"\nbuild ({args.build_threads} FAISS threads)")
    for name, seconds in builds:
        print(f"  {name:42s} {seconds:7.2f} s")
    print(f"\n{'search':24s} {f'recall@{args.k}':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'QPS':>8s} {'speed-up':>9s}")
    for row in rows:
        speed_up = exact.p50_ms / row.p50_ms
        print(f"{row.name:24s} {row.recall:10.3f} {row.p50_ms:8.3f} {row.p99_ms:8.3f} {row.qps:8.0f} {speed_up:8.1f}x")
    default = next((r for r in rows if r.name == "HNSW efSearch=128"), None)
    if default is not None:
        verdict = "met" if default.recall >= GOAL_RECALL else "NOT met"
        print(
            f"goal: ANN recall@{args.k} >= {GOAL_RECALL} at the service default (HNSW efSearch=128): "
            f"{default.recall:.3f} -> {verdict}"
        )


if __name__ == "__main__":
    main()
