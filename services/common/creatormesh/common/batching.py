"""Dynamic batching: calls that arrive while a batch is running are served together by the next one.

A model server pays a fixed cost per forward pass, index search or Redis round trip; running concurrent
requests as one batch pays it once. There is no timer: a lone call runs at once (batch of one), and under
load each batch takes whatever queued up while the previous one ran (at most ``max_batch``), so batching
adds no latency of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from creatormesh.common import metrics

log = logging.getLogger("creatormesh.batching")

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """Runs ``run(items) -> results`` (one result per item, in order) over batches of concurrent ``submit`` calls.

    If ``run`` raises for a batch of several items, each item is run again alone, so one bad item fails only
    its own call. A caller that is cancelled (a deadline) just stops waiting; its item may still run."""

    def __init__(
        self, run: Callable[[list[In]], Awaitable[Sequence[Out]]], max_batch: int = 64, name: str = "batch"
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        self._run = run
        self._sizes = metrics.BATCH_SIZE.labels(name)
        self.max_batch = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # batches run so far (for metrics and tests)
        self.items = 0

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="batcher")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            batch = [(item, future) for item, future in batch if not future.done()]  # drop cancelled callers
            if batch:
                self.batches += 1
                self.items += len(batch)
                self._sizes.observe(len(batch))
                await self._serve(batch)

    async def _serve(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:  # the worker is cancelled (shutdown): nobody may wait forever
            for _, future in [*batch, *self._queue]:
                future.cancel()
            self._queue.clear()
            raise
        except Exception as exc:  # noqa: BLE001 — handed to the callers
            if len(batch) > 1:
                log.warning("a batch of %d failed (%s); running its items one by one", len(batch), exc)
                for one in batch:
                    await self._serve([one])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
