"""The service end to end over gRPC: the tiny Wan pipeline loaded from its directory, real Redis queue, SQLite,
local storage; events over the embedded broker."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from creatormesh.common import kafka_compat, topics
from creatormesh.common.grpc_errors import field_violations
from creatormesh.common.media import ffmpeg_exe
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb

from .helpers import Start, tiny_params


async def run_job(stub: Any, **params: Any) -> tuple[pb.Job, list[pb.WatchJobResponse]]:
    submitted = await stub.SubmitGeneration(
        pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="u1", params=tiny_params(**params))
    )
    updates = [u async for u in stub.WatchJob(pb.WatchJobRequest(job_id=submitted.job.job_id))]
    job = (await stub.GetJob(pb.GetJobRequest(job_id=submitted.job.job_id))).job
    return job, updates


def probe(path: str) -> str:
    out = subprocess.run([ffmpeg_exe(), "-i", path], capture_output=True, text=True, check=False)
    return out.stderr


async def test_job_end_to_end(start: Start) -> None:
    stub, _ = await start(workers=0)  # the API replica; the job waits in the queue
    submitted = await stub.SubmitGeneration(
        pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="u1", params=tiny_params())
    )
    job_id = submitted.job.job_id

    async def watch() -> list[pb.WatchJobResponse]:
        return [u async for u in stub.WatchJob(pb.WatchJobRequest(job_id=job_id))]

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0.5)
    await start()  # a worker replica: its progress reaches the API replica's watcher through Redis
    updates = await asyncio.wait_for(watching, 120)
    job = (await stub.GetJob(pb.GetJobRequest(job_id=job_id))).job
    assert updates[0].status == pb.JOB_STATUS_QUEUED
    assert job.status == pb.JOB_STATUS_SUCCEEDED and job.attempts == 1 and job.fraction == 1.0
    assert job.model == "tiny-wan" and job.adapter_version == "base"
    assert job.params.num_candidates == 2 and job.params.seed == 11 and job.params.guidance_scale == 5.0
    assert [c.seed for c in job.candidates] == [11, 12]
    assert job.candidates[0].prompt == "a red sneaker ad on a city street"
    assert job.candidates[1].prompt != job.candidates[0].prompt  # a rule-based variation
    for c in job.candidates:
        assert c.status == pb.CANDIDATE_STATUS_SUCCEEDED
        assert (c.frames, c.fps, c.width, c.height) == (9, 8, 64, 64)
        assert c.duration_seconds == pytest.approx(9 / 8)
        info = probe(c.video_url)
        assert "h264" in info and "64x64" in info and "8 fps" in info
        assert Path(c.thumbnail_url).read_bytes()[:2] == b"\xff\xd8"  # JPEG
        assert c.HasField("quality") and c.quality.HasField("flicker") and 0 <= c.quality.flicker <= 1
        assert c.generation_seconds > 0
    t = job.timings
    assert t.total_seconds >= t.generation_seconds > 0 and t.finished_at.seconds >= t.created_at.seconds
    steps = [(u.candidate_index, u.step) for u in updates if u.step]
    assert steps == [(0, 1), (0, 2), (1, 1), (1, 2)]
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert updates[-1].status == pb.JOB_STATUS_SUCCEEDED
    assert [u.candidate.candidate_id for u in updates if u.HasField("candidate")] == [
        c.candidate_id for c in job.candidates
    ]
    listed = await stub.ListCandidates(pb.ListCandidatesRequest(job_id=job.job_id))
    assert [c.candidate_id for c in listed.candidates] == [c.candidate_id for c in job.candidates]
    # watching a finished job: one message, at once
    again = [u async for u in stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id))]
    assert len(again) == 1 and again[0].status == pb.JOB_STATUS_SUCCEEDED


async def test_submit_is_idempotent(start: Start) -> None:
    stub, _ = await start(workers=0)
    request = pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="u1", params=tiny_params())
    first = await stub.SubmitGeneration(request)
    second = await stub.SubmitGeneration(request)
    assert not first.replayed and second.replayed and first.job.job_id == second.job.job_id
    assert first.job.status == pb.JOB_STATUS_QUEUED


def submit(**params: Any) -> pb.SubmitGenerationRequest:
    return pb.SubmitGenerationRequest(request_id="r", user_id="u", params=tiny_params(**params))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SubmitGenerationRequest(user_id="u", params=tiny_params()), "request_id"),
        (pb.SubmitGenerationRequest(request_id="r", params=tiny_params()), "user_id"),
        (pb.SubmitGenerationRequest(request_id="r", user_id="u"), "params"),
        (submit(prompt=""), "params.prompt"),
        (submit(width=70), "params.width"),
        (submit(num_frames=300), "params.num_frames"),
        (submit(num_candidates=9), "params.num_candidates"),
        (submit(seed=-5), "params.seed"),
    ],
)
async def test_invalid_requests_name_the_field(start: Start, request_: Any, field: str) -> None:
    stub, _ = await start(workers=0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitGeneration(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == [field]


async def test_unknown_ids(start: Start) -> None:
    stub, _ = await start(workers=0)
    for call in (
        stub.GetJob(pb.GetJobRequest(job_id="nope")),
        stub.CancelJob(pb.CancelJobRequest(job_id="nope")),
        stub.ListCandidates(pb.ListCandidatesRequest(job_id="nope")),
        stub.ActivateAdapter(pb.ActivateAdapterRequest(version="lora-9999")),
        stub.SubmitGeneration(
            pb.SubmitGenerationRequest(request_id="r", user_id="u", params=tiny_params(), adapter_version="lora-9")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetJob(pb.GetJobRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_a_queued_and_a_running_job(start: Start) -> None:
    stub, _ = await start(workers=0)
    queued = await stub.SubmitGeneration(
        pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="u1", params=tiny_params())
    )
    cancelled = (await stub.CancelJob(pb.CancelJobRequest(job_id=queued.job.job_id))).job
    assert cancelled.status == pb.JOB_STATUS_CANCELLED
    assert {c.status for c in cancelled.candidates} == {pb.CANDIDATE_STATUS_CANCELLED}
    stub2, _ = await start()  # a worker: the cancelled job is skipped
    running = await stub2.SubmitGeneration(
        pb.SubmitGenerationRequest(
            request_id=uuid.uuid4().hex, user_id="u1", params=tiny_params(num_inference_steps=40, num_candidates=3)
        )
    )
    async for update in stub2.WatchJob(pb.WatchJobRequest(job_id=running.job.job_id)):
        if update.step >= 2:
            await stub2.CancelJob(pb.CancelJobRequest(job_id=running.job.job_id))
        if update.status == pb.JOB_STATUS_CANCELLED:
            break
    await asyncio.sleep(1.0)
    job = (await stub2.GetJob(pb.GetJobRequest(job_id=running.job.job_id))).job
    assert job.status == pb.JOB_STATUS_CANCELLED
    assert all(c.status == pb.CANDIDATE_STATUS_CANCELLED for c in job.candidates)
    done = (await stub2.GetJob(pb.GetJobRequest(job_id=queued.job.job_id))).job
    assert done.status == pb.JOB_STATUS_CANCELLED and done.attempts == 0


async def test_picks_publish_events_and_trigger_retraining(start: Start, broker: str) -> None:
    stub, service = await start(broker=broker, retrain_every_picks=2)
    results = []
    jobs = []
    for _ in range(2):
        job, _updates = await run_job(stub, num_candidates=2)
        jobs.append(job)
        pick = pb.SelectCandidateRequest(job_id=job.job_id, candidate_id=job.candidates[1].candidate_id, user_id="u1")
        results.append(await stub.SelectCandidate(pick))
    assert [r.picks_total - results[0].picks_total for r in results] == [0, 1]
    assert results[-1].retrain_threshold == 2
    assert sum(r.retrain_triggered for r in results) == 1
    again = await stub.SelectCandidate(
        pb.SelectCandidateRequest(job_id=jobs[0].job_id, candidate_id=jobs[0].candidates[1].candidate_id, user_id="u1")
    )
    assert again.already_recorded
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SelectCandidate(
            pb.SelectCandidateRequest(
                job_id=jobs[0].job_id, candidate_id=jobs[0].candidates[0].candidate_id, user_id="u1"
            )
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    job = (await stub.GetJob(pb.GetJobRequest(job_id=jobs[0].job_id))).job
    assert job.selected_candidate_id == jobs[0].candidates[1].candidate_id and job.candidates[1].selected
    await service.drain_outbox()
    job_ids = {j.job_id for j in jobs}
    videos = kafka_compat.read_events(broker, topics.VIDEOS_GENERATED, lambda e: e.job_id in job_ids, 4)
    prefs = kafka_compat.read_events(broker, topics.PREFERENCES_RECORDED, lambda e: e.job_id in job_ids, 2)
    retrains = kafka_compat.read_events(
        broker, topics.RETRAIN_REQUESTED, lambda e: e.model == "video_diffusion.lora" and e.threshold == 2, 1
    )
    assert len(videos) == 4
    assert videos[0].video_url and videos[0].frames == 9
    assert videos[0].original_prompt == "a red sneaker ad on a city street"
    assert len(prefs) == 2 and prefs[0].chosen.candidate_id == jobs[0].candidates[1].candidate_id
    assert [c.candidate_id for c in prefs[0].rejected] == [jobs[0].candidates[0].candidate_id]
    assert retrains and retrains[0].dataset_uri == "vd_picks"


@pytest.mark.integration
async def test_videos_requested_over_kafka(start: Start, broker: str) -> None:
    from creatormesh.events.v1 import videos_pb2

    stub, service = await start(broker=broker)
    bus = service.runtime.bus
    assert bus is not None
    request_id = uuid.uuid4().hex
    event = videos_pb2.VideoRequested(request_id=request_id, user_id="u9", params=tiny_params(num_candidates=2))
    await bus.publish(topics.VIDEOS_REQUESTED, event, subject=request_id)
    await bus.publish(topics.VIDEOS_REQUESTED, event, subject=request_id)  # the same request again: one job
    bad = videos_pb2.VideoRequested(request_id=uuid.uuid4().hex, user_id="u9", params=tiny_params(width=70))
    await bus.publish(topics.VIDEOS_REQUESTED, bad, subject=bad.request_id)
    generated = await asyncio.to_thread(
        kafka_compat.read_events, broker, topics.VIDEOS_GENERATED, lambda e: e.request_id == request_id, 2, 120.0
    )
    assert len(generated) == 2 and len({e.job_id for e in generated}) == 1
    assert {e.candidate_index for e in generated} == {0, 1} and all(e.user_id == "u9" for e in generated)
    job = (await stub.GetJob(pb.GetJobRequest(job_id=generated[0].job_id))).job
    assert job.request_id == request_id and job.status == pb.JOB_STATUS_SUCCEEDED
    assert await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.VIDEOS_REQUESTED), 1) >= 1


async def test_submitted_prompts_feed_the_drift_measure(start: Start) -> None:
    from creatormesh.video_diffusion import monitoring

    stub, service = await start(workers=0)  # API only: submissions are not generated
    for i in range(20):  # 10 fill the reference window, 10 the recent one (see conftest)
        params = tiny_params(f"sneaker ad number {i} on a rainy street")
        await stub.SubmitGeneration(pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="u", params=params))
    deadline = asyncio.get_running_loop().time() + 60
    while service.drift is None or service.drift.counts != (10, 10):
        assert asyncio.get_running_loop().time() < deadline, "prompts never reached the drift windows"
        await asyncio.sleep(0.1)
    score = service.drift.score()
    assert score is not None and 0.0 <= score < 0.5  # one topic: little drift
    await asyncio.sleep(0.2)  # the gauge is set right after the last add
    assert monitoring.DRIFT._value.get() == pytest.approx(score)
