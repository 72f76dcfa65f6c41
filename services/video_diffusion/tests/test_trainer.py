"""Training runs from `retrain.requested`: the request queue (deduplicated, at least once, a crashed run retried)
against real Redis, and end to end over the embedded broker: picks → retrain.requested → the trainer replica runs
`creatormesh video train-lora` in a child process → a new adapter registered and active; invalid requests → DLQ."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from creatormesh.common import kafka_compat, topics
from creatormesh.common.redis_pool import redis_client
from creatormesh.events.v1 import retrain_pb2
from creatormesh.video_diffusion.queue import JobQueue
from creatormesh.video_diffusion.trainer import Outcome, TrainingRuns, train_command
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb

from .helpers import Start
from .test_service import run_job


def exits(code: int) -> list[str]:
    """A command that prints a line and exits with ``code`` (train-lora's exit status is the contract)."""
    return [sys.executable, "-c", f"import sys; print('run done, code {code}'); sys.exit({code})"]


async def runs(redis_url: str, tmp_path: Path, command: list[str], lease_ms: int = 1000) -> TrainingRuns:
    queue = JobQueue(redis_client(redis_url), key=f"vd-train-test:{uuid.uuid4().hex[:8]}", group="trainers",
                     lease_ms=lease_ms, max_deliveries=2)  # fmt: skip
    await queue.ensure_group()
    return TrainingRuns(queue, command, {}, tmp_path / "logs", heartbeat_s=0.2)


def test_train_command() -> None:
    cmd = train_command("--steps 5 --width '32'", activate=True)
    assert cmd[1:] == ["-m", "creatormesh.common", "video", "train-lora", "--steps", "5", "--width", "32", "--activate"]
    assert train_command("", activate=False)[-1] == "train-lora"


async def test_requests_are_deduplicated_and_final_outcomes_acked(redis_url: str, tmp_path: Path) -> None:
    for code, outcome in [(0, Outcome.REGISTERED), (3, Outcome.REJECTED), (2, Outcome.REFUSED)]:
        training = await runs(redis_url, tmp_path, exits(code))
        assert await training.request("event-1", "2 picks", "base")
        assert not await training.request("event-1", "2 picks", "base")  # a redelivered event
        delivery = await training.queue.next()
        assert delivery is not None and delivery.job_id == "event-1" and delivery.fields["reason"] == "2 picks"
        result = await training.run_one(delivery)
        assert result.outcome is outcome and result.last_line == f"run done, code {code}"
        assert await training.queue.next() is None
        depth = await training.queue.depth()
        assert (depth.waiting, depth.pending, depth.dead) == (0, 0, 0)


async def test_a_crashed_run_is_retried_then_dead_lettered(redis_url: str, tmp_path: Path) -> None:
    training = await runs(redis_url, tmp_path, exits(1), lease_ms=300)  # 1: an exception in the command
    await training.request("event-2")
    first = await training.queue.next()
    assert first is not None and (await training.run_one(first)).outcome is Outcome.FAILED
    assert await training.queue.next() is None  # pending, not yet stale
    await asyncio.sleep(0.4)
    second = await training.queue.next()
    assert second is not None and second.job_id == "event-2" and second.deliveries == 2
    assert (await training.run_one(second)).outcome is Outcome.FAILED
    await asyncio.sleep(0.4)
    assert await training.queue.next() is None  # over max_deliveries: dead-lettered
    assert (await training.queue.depth()).dead == 1


async def test_a_long_run_keeps_its_delivery_and_is_killed_on_shutdown(redis_url: str, tmp_path: Path) -> None:
    training = await runs(redis_url, tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], lease_ms=500)
    await training.request("event-3")
    delivery = await training.queue.next()
    assert delivery is not None
    task = asyncio.create_task(training.run_one(delivery))
    await asyncio.sleep(1.2)  # more than two leases: heartbeats keep it from being reclaimed
    other = JobQueue(training.queue.redis, key=training.queue.key, group="trainers", lease_ms=500)
    assert await other.next() is None and training.running == "event-3"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5  # the child was killed, not waited for
    await asyncio.sleep(0.6)
    again = await other.next()  # not acked: another trainer takes it over
    assert again is not None and again.job_id == "event-3"


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.5)


@pytest.mark.integration
async def test_picks_start_a_training_run_that_registers_an_adapter(start: Start, broker: str) -> None:
    args = "--steps 4 --rank 4 --learning-rate 0.01 --width 32 --height 32 --frames 5 --holdout 0.5 --tolerance 10"
    stub, service = await start(
        broker=broker, retrain_every_picks=2, trainer=True, trainer_args=args, trainer_activate=True
    )
    for _ in range(2):
        job, _updates = await run_job(stub, num_candidates=2)
        await stub.SelectCandidate(
            pb.SelectCandidateRequest(job_id=job.job_id, candidate_id=job.candidates[0].candidate_id, user_id="u1")
        )
    bus = service.runtime.bus
    assert bus is not None
    other = retrain_pb2.RetrainRequested(
        model="ranking.two_tower", trigger=retrain_pb2.RETRAIN_TRIGGER_MANUAL, reason="not ours"
    )
    await bus.publish(topics.RETRAIN_REQUESTED, other, subject="ranking.two_tower")  # skipped
    bad = retrain_pb2.RetrainRequested(model="video_diffusion.lora", reason="no trigger")
    await bus.publish(topics.RETRAIN_REQUESTED, bad, subject="video_diffusion.lora")  # → DLQ

    async def registered() -> bool:
        listed = await stub.ListAdapters(pb.ListAdaptersRequest())
        return listed.active_version == "lora-0001"

    await wait_for(registered)
    listed = await stub.ListAdapters(pb.ListAdaptersRequest())
    assert [a.version for a in listed.adapters] == ["lora-0001"] and listed.adapters[0].training_samples == 1
    dead = await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.RETRAIN_REQUESTED), 1)
    assert dead >= 1
    logs = list((Path(service.settings.work_dir) / "training-logs").glob("*.log"))
    assert len(logs) == 1 and "lora-0001" in logs[0].read_text()
    job, _ = await run_job(stub, num_candidates=1)  # new jobs use the new adapter
    assert job.adapter_version == "lora-0001"
