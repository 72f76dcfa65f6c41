"""Training runs started by ``retrain.requested``: requests are queued in a Redis stream (deduplicated by event id)
and a trainer loop runs each as the training command, ``creatormesh video train-lora``, in a child process.

The request is not trained inside the Kafka handler: a training run takes minutes to hours, and a consumer that does
not poll for that long is put out of its group. The queue is the job queue's (:class:`JobQueue`): a trainer that dies
mid-run leaves the request pending, and another trainer (or this one, restarted) reclaims it after the lease; one that
keeps dying is dead-lettered after ``max_deliveries``. The child process is the same command an operator or a
Kubernetes Job runs, with this process's settings in its environment.

The command's exit status is the outcome: 0 a new adapter was registered, 3 it was trained but not registered (worse
than the active one on held-out picks), 2 refused (bad arguments, too few picks, a model that cannot be trained). All
three are final. Anything else (1 for an exception, a signal) is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import monitoring
from .queue import Delivery, JobQueue

log = logging.getLogger(__name__)

#: How long a request's event id is remembered for deduplication.
SEEN_TTL_S = 30 * 24 * 3600


#: train-lora's exit status when the adapter was trained but is worse than the active one.
EXIT_NOT_REGISTERED = 3


class Outcome(enum.Enum):
    REGISTERED = "registered"
    REJECTED = "rejected"
    REFUSED = "refused"
    FAILED = "failed"


_OUTCOMES = {0: Outcome.REGISTERED, EXIT_NOT_REGISTERED: Outcome.REJECTED, 2: Outcome.REFUSED}


@dataclass(frozen=True)
class RunResult:
    request_id: str
    outcome: Outcome
    returncode: int
    seconds: float
    log_path: Path
    last_line: str


def train_command(extra_args: str, activate: bool) -> list[str]:
    """The training command as argv: ``python -m creatormesh.common video train-lora`` + the configured arguments."""
    cmd = [sys.executable, "-m", "creatormesh.common", "video", "train-lora", *shlex.split(extra_args)]
    if activate and "--activate" not in cmd:
        cmd.append("--activate")
    return cmd


class TrainingRuns:
    """Queue of training requests and the loop that runs them one at a time."""

    def __init__(
        self,
        queue: JobQueue,
        command: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        heartbeat_s: float = 10.0,
    ) -> None:
        self.queue = queue
        self.command = list(command)
        self.env = {**os.environ, **env}
        self.log_dir = Path(log_dir)
        self.heartbeat_s = heartbeat_s
        self.running: str | None = None

    async def request(self, request_id: str, reason: str = "", base_version: str = "") -> bool:
        """Queue a training run for request ``request_id`` (the event id); False when it was queued before."""
        added = await self.queue.enqueue_once(request_id, SEEN_TTL_S, reason=reason, base_version=base_version)
        if added:
            log.info("training run %s queued: %s", request_id, reason or "no reason given")
        return added

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Take requests and run them until ``stop`` is set; a Redis outage is waited out."""
        while (delivery := await self.queue.take(stop)) is not None:
            await self.run_one(delivery)

    async def run_one(self, delivery: Delivery) -> RunResult:
        """Run the training command for one delivery; acknowledge it unless the run crashed."""
        self.running = delivery.job_id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{delivery.job_id}.log"
        started = time.perf_counter()
        log.info("training run %s started (delivery %d): %s", delivery.job_id, delivery.deliveries,
                 shlex.join(self.command))  # fmt: skip
        try:
            with log_path.open("ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    *self.command, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
                )
                returncode = await self._wait(proc, delivery)
        finally:
            self.running = None
        seconds = time.perf_counter() - started
        outcome = _OUTCOMES.get(returncode, Outcome.FAILED)
        result = RunResult(delivery.job_id, outcome, returncode, seconds, log_path, _last_line(log_path))
        monitoring.TRAINING_RUNS.labels(outcome.value).inc()
        if outcome is Outcome.FAILED:
            log.error("training run %s failed (exit %d) after %.1f s; it will be retried: %s", delivery.job_id,
                      returncode, seconds, result.last_line)  # fmt: skip
        else:
            await self.queue.ack(delivery)
            log.info("training run %s %s in %.1f s: %s", delivery.job_id, outcome.value, seconds,
                     result.last_line)  # fmt: skip
        return result

    async def _wait(self, proc: Any, delivery: Delivery) -> int:
        """Wait for the child, renewing the delivery meanwhile; kill it if this task is cancelled (shutdown)."""
        try:
            while True:
                try:
                    return int(await asyncio.wait_for(proc.wait(), timeout=self.heartbeat_s))
                except TimeoutError:
                    with contextlib.suppress(Exception):
                        await self.queue.heartbeat(delivery)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise


def _last_line(path: Path, limit: int = 4096) -> str:
    """The last non-empty line of a log file (progress bars' carriage returns split lines too)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""
