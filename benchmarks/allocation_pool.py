"""Pool allocation of 100,000 creators: fairness scoring + exact pool split, against
a plain proportional-to-views split of the same budget measured in the same run.

Timed (engine): the population context, the eight principle scores of every creator,
building the pool members and ``split`` (water-filling floors/caps, largest remainder,
creator_id ties, exact sum) — what ``AllocatePool`` does after validating its input.
Timed (baseline): numpy largest-remainder split of the budget by viewer_count.
The simulated population is built once, outside the timing. Median of --runs runs
after one warm-up; peak memory of one more run of each under tracemalloc.

    .venv/bin/python benchmarks/allocation_pool.py [--creators 100000] [--runs 5] [--floors]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from creatormesh.allocation.fairness import Context, FairnessEngine
from creatormesh.allocation.pool import members, split
from creatormesh.allocation.population import simulate
from creatormesh.allocation.signals import CreatorSignals

GOAL_SECONDS = 1.0
BUDGET_CENTS = 1_000_000_000  # $10,000,000.00


def engine_split(
    ids: list[str], signals: list[CreatorSignals], floors: list[int | None] | None, caps: list[int | None] | None
) -> list[Any]:
    engine = FairnessEngine()
    scores = engine.scores(signals, Context.from_population(signals))
    return split(BUDGET_CENTS, members(ids, scores, floors, caps))


def baseline_split(views: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Proportional to views, largest remainder (ties by position), exact sum."""
    quotas: npt.NDArray[np.float64] = views * (BUDGET_CENTS / float(views.sum()))
    amounts: npt.NDArray[np.int64] = np.floor(quotas).astype(np.int64)
    left = BUDGET_CENTS - int(amounts.sum())
    order = np.argsort(-(quotas - amounts), kind="stable")
    amounts[order[:left]] += 1
    return amounts


def timed(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_memory(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--floors", action="store_true", help="give 10 %% of members a floor and 5 %% a cap")
    args = parser.parse_args()

    start = time.perf_counter()
    population = simulate(args.creators, args.seed)
    ids = [cid for cid, _ in population]
    signals = [s for _, s in population]
    views = np.array([s.viewer_count for s in signals], dtype=np.float64)
    floors: list[int | None] | None = None
    caps: list[int | None] | None = None
    if args.floors:
        rng = np.random.default_rng(args.seed)
        mean = BUDGET_CENTS // args.creators
        floors = [mean // 2 if r < 0.10 else None for r in rng.random(args.creators)]
        caps = [mean * 2 if r < 0.05 else None for r in rng.random(args.creators)]
        caps = [None if f is not None else c for f, c in zip(floors, caps, strict=True)]
    print(f"setup: simulated {args.creators:,} creators in {time.perf_counter() - start:.2f} s (not timed)")

    parts = engine_split(ids, signals, floors, caps)
    assert sum(p.amount_cents for p in parts) == BUDGET_CENTS
    assert int(baseline_split(views).sum()) == BUDGET_CENTS

    engine_s, engine_all = timed(lambda: engine_split(ids, signals, floors, caps), args.runs)
    base_s, base_all = timed(lambda: baseline_split(views), args.runs)
    engine_mem = peak_memory(lambda: engine_split(ids, signals, floors, caps))
    base_mem = peak_memory(lambda: baseline_split(views))

    print(f"budget: {BUDGET_CENTS:,} cents; floors/caps: {'yes' if args.floors else 'no'}; runs: {args.runs}")
    print(f"{'':42s} {'median s':>9s} {'runs (s)':>36s} {'peak MiB':>9s}")
    for name, median, all_runs, mem in (
        ("engine: score + pool split (objects)", engine_s, engine_all, engine_mem),
        ("baseline: numpy proportional to views", base_s, base_all, base_mem),
    ):
        runs = " ".join(f"{t:.3f}" for t in all_runs)
        print(f"{name:42s} {median:9.3f} {runs:>36s} {mem / 2**20:9.1f}")
    print(f"ratio engine / baseline: {engine_s / base_s:.0f}x")
    verdict = "met" if engine_s <= GOAL_SECONDS else "NOT met"
    print(f"goal: scoring + pool split of {args.creators:,} creators <= {GOAL_SECONDS:.1f} s -> {verdict}")


if __name__ == "__main__":
    main()
