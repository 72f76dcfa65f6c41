"""The job store on SQLite and on the machine's PostgreSQL, its schema made by the Alembic migrations."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from creatormesh.common.errors import FailedPrecondition, NotFound
from creatormesh.common.testing import postgres_schema_url
from creatormesh.video_diffusion.limits import Params
from creatormesh.video_diffusion.records import (
    BASE_VERSION,
    Adapter,
    Candidate,
    CandidateStatus,
    Job,
    JobStatus,
    OutboxEvent,
    PickResult,
)
from creatormesh.video_diffusion.store import VERSION_TABLE, Base, JobStore, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db"
    else:
        yield from postgres_schema_url("vd")


@pytest.fixture
def store(url: str) -> Iterator[JobStore]:
    migrate(url)
    s = JobStore(url)
    yield s
    s.close()


def new_job(request_id: str | None = None, candidates: int = 3) -> Job:
    job_id = uuid.uuid4().hex
    params = Params("a red sneaker ad", "", 9, 8, 32, 32, 2, 5.0, 4_000_000_000)
    job = Job(
        job_id=job_id,
        request_id=request_id or uuid.uuid4().hex,
        user_id="u1",
        params=params,
        num_candidates=candidates,
        vary_prompt=True,
        model="tiny-wan",
        adapter_version=BASE_VERSION,
        created_at=100.0,
    )
    job.candidates = [
        Candidate(f"{job_id}-{i}", job_id, i, f"{params.prompt} v{i}", params.seed + i) for i in range(candidates)
    ]
    return job


def succeed(store: JobStore, job: Job, index: int, owner: str) -> bool:
    c = job.candidates[index]
    c.status = CandidateStatus.SUCCEEDED
    c.video_url = f"file:///videos/{c.candidate_id}.mp4"
    c.frames, c.fps, c.width, c.height, c.generation_seconds = 9, 8, 32, 32, 0.5
    c.quality = {"clip_score": 0.25, "flicker": 0.01}
    return store.finish_candidate(c, owner)


def test_migrations_match_the_models(url: str) -> None:
    migrate(url)
    migrate(url)  # idempotent
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert context.get_current_revision() == "0001"
        assert compare_metadata(context, Base.metadata) == []
        assert VERSION_TABLE in inspect(conn).get_table_names()
    engine.dispose()


def test_create_is_idempotent_by_request_id(store: JobStore) -> None:
    job = new_job("req-1")
    stored, replayed = store.create_job(job)
    assert not replayed and stored.status == JobStatus.QUEUED
    assert [c.seed for c in stored.candidates] == [4_000_000_000, 4_000_000_001, 4_000_000_002]
    assert stored.params == job.params
    again, replayed = store.create_job(new_job("req-1"))
    assert replayed and again.job_id == job.job_id
    assert store.get_job("nope") is None
    with pytest.raises(NotFound):
        store.require_job("nope")


def test_claim_lease_and_fencing(store: JobStore) -> None:
    job, _ = store.create_job(new_job())
    first = store.claim_job(job.job_id, "w1", lease_s=10, now=1000.0)
    assert first is not None and first.owner == "w1" and first.attempts == 1 and first.started_at == 1000.0
    assert store.claim_job(job.job_id, "w2", lease_s=10, now=1005.0) is None  # w1's lease holds
    assert store.renew_lease(job.job_id, "w1", lease_s=10, now=1008.0)
    assert store.claim_job(job.job_id, "w2", lease_s=10, now=1015.0) is None  # renewed to 1018
    assert store.start_candidate(job.job_id, 0, "w1")
    assert succeed(store, first, 0, "w1")
    second = store.claim_job(job.job_id, "w2", lease_s=10, now=1020.0)  # w1 died
    assert second is not None and second.owner == "w2" and second.attempts == 2
    assert second.started_at == 1000.0
    assert [c.status for c in second.candidates] == [
        CandidateStatus.SUCCEEDED,
        CandidateStatus.PENDING,
        CandidateStatus.PENDING,
    ]
    # the old worker comes back: nothing it writes lands
    assert not store.renew_lease(job.job_id, "w1", lease_s=10, now=1021.0)
    assert not succeed(store, second, 1, "w1")
    assert not store.finish_job(job.job_id, "w1", JobStatus.SUCCEEDED)
    assert succeed(store, second, 1, "w2") and succeed(store, second, 2, "w2")
    assert store.finish_job(job.job_id, "w2", JobStatus.SUCCEEDED, now=1030.0)
    done = store.require_job(job.job_id)
    assert done.status == JobStatus.SUCCEEDED and done.fraction == 1.0
    assert done.generation_seconds == pytest.approx(1.5)
    assert done.queue_seconds == pytest.approx(900.0) and done.total_seconds == pytest.approx(930.0)
    assert done.candidates[1].quality == {"clip_score": 0.25, "flicker": 0.01}
    assert store.claim_job(job.job_id, "w3", lease_s=10, now=5000.0) is None  # finished: never again


def test_cancel(store: JobStore) -> None:
    queued, _ = store.create_job(new_job())
    cancelled = store.cancel_job(queued.job_id)
    assert cancelled.status == JobStatus.CANCELLED
    assert {c.status for c in cancelled.candidates} == {CandidateStatus.CANCELLED}
    assert store.claim_job(queued.job_id, "w1", lease_s=10) is None
    running, _ = store.create_job(new_job())
    claimed = store.claim_job(running.job_id, "w1", lease_s=10)
    assert claimed is not None and succeed(store, claimed, 0, "w1")
    after = store.cancel_job(running.job_id)
    assert [c.status for c in after.candidates] == [
        CandidateStatus.SUCCEEDED,
        CandidateStatus.CANCELLED,
        CandidateStatus.CANCELLED,
    ]
    assert not store.renew_lease(running.job_id, "w1", lease_s=10)  # the worker learns it was cancelled
    assert store.cancel_job(running.job_id).status == JobStatus.CANCELLED  # no-op
    with pytest.raises(NotFound):
        store.cancel_job("nope")


def test_unfinished_jobs(store: JobStore) -> None:
    a, _ = store.create_job(new_job())
    b, _ = store.create_job(new_job())
    assert store.claim_job(b.job_id, "w1", lease_s=10, now=1000.0) is not None
    assert store.unfinished_jobs(now=1005.0) == [a.job_id]
    assert set(store.unfinished_jobs(now=1011.0)) == {a.job_id, b.job_id}
    assert store.count_jobs(JobStatus.QUEUED) == 1 and store.count_jobs(JobStatus.RUNNING) == 1


def finished_job(store: JobStore) -> Job:
    job, _ = store.create_job(new_job())
    claimed = store.claim_job(job.job_id, "w", lease_s=10)
    assert claimed is not None
    for i in range(2):
        assert succeed(store, claimed, i, "w")
    claimed.candidates[2].status, claimed.candidates[2].error = CandidateStatus.FAILED, "boom"
    assert store.finish_candidate(claimed.candidates[2], "w")
    assert store.finish_job(job.job_id, "w", JobStatus.SUCCEEDED)
    return store.require_job(job.job_id)


def test_picks_trigger_retraining_every_threshold(store: JobStore) -> None:
    def events(result: PickResult) -> list[OutboxEvent]:
        out = [OutboxEvent(uuid.uuid4().hex, "preferences.recorded", result.pick.job_id, "t.Pick", b"p")]
        if result.retrain_triggered:
            out.append(OutboxEvent(uuid.uuid4().hex, "retrain.requested", "lora", "t.Retrain", b"r"))
        return out

    results = []
    for _ in range(7):
        job = finished_job(store)
        results.append(store.record_pick(job.job_id, job.candidates[1].candidate_id, "u1", threshold=3, events=events))
    assert [r.picks_total for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.retrain_triggered for r in results] == [False, False, True, False, False, True, False]
    assert [r.picks_since_retrain for r in results] == [1, 2, 0, 1, 2, 0, 1]
    job = store.require_job(results[0].pick.job_id)
    assert job.selected_candidate_id == job.candidates[1].candidate_id and job.candidates[1].selected
    assert results[0].pick.prompt == job.candidates[1].prompt and results[0].pick.video_url
    again = store.record_pick(job.job_id, job.candidates[1].candidate_id, "u1", threshold=3, events=events)
    assert again.already_recorded and not again.retrain_triggered and again.picks_total == 7
    with pytest.raises(FailedPrecondition, match="already has a pick"):
        store.record_pick(job.job_id, job.candidates[0].candidate_id, "u1", threshold=3)
    with pytest.raises(FailedPrecondition, match="FAILED"):
        store.record_pick(job.job_id, job.candidates[2].candidate_id, "u2", threshold=3)
    with pytest.raises(NotFound):
        store.record_pick(job.job_id, "nope", "u2", threshold=3)
    with pytest.raises(NotFound):
        store.record_pick("nope", "nope", "u2", threshold=3)
    pending = store.pending_events()
    assert [e.topic for e in pending].count("retrain.requested") == 2
    assert [e.topic for e in pending].count("preferences.recorded") == 7
    store.mark_sent([e.event_id for e in pending[:5]])
    assert store.pending_events() == pending[5:]
    assert [p.pick_number for p in store.picks(after=results[4].pick.pick_number)] == [
        r.pick.pick_number for r in results[5:]
    ]


def test_concurrent_picks_trigger_once_per_threshold(store: JobStore) -> None:
    jobs = [finished_job(store) for _ in range(8)]
    triggered: list[bool] = []
    lock = threading.Lock()

    def pick(job: Job) -> None:
        result = store.record_pick(job.job_id, job.candidates[0].candidate_id, "u1", threshold=4)
        with lock:
            triggered.append(result.retrain_triggered)

    threads = [threading.Thread(target=pick, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(triggered) == 8 and sum(triggered) == 2


def test_adapters(store: JobStore) -> None:
    assert store.active_version() == BASE_VERSION and store.list_adapters() == []
    for i in range(3):
        store.register_adapter(
            Adapter(
                f"lora-{i:04d}", "tiny-wan", f"file:///a/{i}", "base", 10 * i, {"eval_loss": 1.0 - i / 10}, 8, 100.0 + i
            )
        )
    with pytest.raises(FailedPrecondition):
        store.register_adapter(Adapter("lora-0000", "tiny-wan", "x", "base", 1, {}, 8, 1.0))
    assert [a.version for a in store.list_adapters()] == ["lora-0002", "lora-0001", "lora-0000"]
    assert [a.version for a in store.list_adapters(offset=1, limit=1)] == ["lora-0001"]
    assert store.set_active("lora-0001") == BASE_VERSION
    assert store.require_adapter("lora-0001").active and not store.require_adapter("lora-0000").active
    assert store.set_active(BASE_VERSION) == "lora-0001"
    with pytest.raises(NotFound):
        store.set_active("lora-9999")
    assert store.require_adapter("lora-0002").metrics == {"eval_loss": pytest.approx(0.8)}


def test_a_job_that_keeps_killing_workers_is_failed(store: JobStore) -> None:
    job, _ = store.create_job(new_job())
    for attempt, now in enumerate((1000.0, 1020.0), start=1):
        claimed = store.claim_job(job.job_id, f"w{attempt}", lease_s=10, now=now, max_attempts=2)
        assert claimed is not None and claimed.attempts == attempt  # each worker dies: the lease runs out
    assert store.claim_job(job.job_id, "w3", lease_s=10, now=1040.0, max_attempts=2) is None
    failed = store.require_job(job.job_id)
    assert failed.status == JobStatus.FAILED and "gave up after 2 attempts" in failed.error
    assert {c.status for c in failed.candidates} == {CandidateStatus.CANCELLED}
    assert store.unfinished_jobs(now=5000.0) == []
