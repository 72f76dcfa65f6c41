"""Batcher: concurrent calls share batches, results go back to their callers, one bad item fails alone."""

from __future__ import annotations

import asyncio

import pytest

from creatormesh.common.batching import Batcher


class Recorder:
    """A batch function that remembers its batches and can be told to fail on an item or to hold."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[str]:
        self.batches.append(items)
        await self.release.wait()
        if 13 in items:
            raise ValueError("13 is bad")
        return [f"r{i}" for i in items]


async def queued_behind_a_held_batch(
    run: Recorder, batcher: Batcher[int, str], items: list[int]
) -> tuple[asyncio.Task[str], list[asyncio.Task[str]]]:
    """Item 0's batch is running and held; ``items`` are submitted meanwhile (so they queue for the next)."""
    run.release.clear()
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    queued = [asyncio.create_task(batcher.submit(i)) for i in items]
    await asyncio.sleep(0.01)
    return first, queued


async def test_a_lone_call_runs_at_once_as_a_batch_of_one() -> None:
    run = Recorder()
    batcher = Batcher(run)
    assert await batcher.submit(1) == "r1"
    assert await batcher.submit(2) == "r2"
    assert run.batches == [[1], [2]]


async def test_calls_arriving_during_a_batch_share_the_next_one_in_order() -> None:
    run = Recorder()
    batcher = Batcher(run, max_batch=4)
    first, rest = await queued_behind_a_held_batch(run, batcher, list(range(1, 10)))
    run.release.set()
    assert await first == "r0"
    assert await asyncio.gather(*rest) == [f"r{i}" for i in range(1, 10)]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert (batcher.batches, batcher.items) == (4, 10)


async def test_a_failing_item_fails_only_its_own_call() -> None:
    run = Recorder()
    batcher = Batcher(run)
    hold, calls = await queued_behind_a_held_batch(run, batcher, [12, 13, 14])
    run.release.set()
    await hold
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == "r12" and results[2] == "r14"
    assert isinstance(results[1], ValueError)
    assert [12, 13, 14] in run.batches and [13] in run.batches  # the batch failed, then each ran alone


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    run = Recorder()
    batcher = Batcher(run)
    hold, (gone, kept) = await queued_behind_a_held_batch(run, batcher, [1, 2])
    gone.cancel()
    run.release.set()
    assert await hold == "r0"
    assert await kept == "r2"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert run.batches[-1] == [2]  # the cancelled caller's item was dropped before its batch ran


async def test_a_wrong_number_of_results_is_an_error_for_the_callers() -> None:
    async def short(items: list[int]) -> list[int]:
        return []

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await Batcher(short).submit(1)
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(short, max_batch=0)
