"""StreamClipperService over real gRPC: ProcessVod streams progress and clips from a real VOD (ffmpeg media,
pocketsphinx transcription, 1080x1920 render), jobs attach by request_id and resume after a restart, bad input
is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import av
import grpc
import pytest

from creatormesh.common.grpc_errors import field_violations
from creatormesh.stream_clipper.app import StreamClipperService
from creatormesh.stream_clipper.records import ClipStatus, Job, Options, Stage
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

from .media import speech_vod


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_vod(tmp_path_factory.mktemp("vod") / "stream.mp4")


def request(vod: Path, request_id: str, **options: Any) -> pb.ProcessVodRequest:
    defaults: dict[str, Any] = {"max_clips": 2, "min_duration_seconds": 4, "max_duration_seconds": 8, "render": False}
    return pb.ProcessVodRequest(
        request_id=request_id, source_uri=str(vod), streamer="tester", options=pb.ClipOptions(**{**defaults, **options})
    )


async def collect(stub: Any, req: pb.ProcessVodRequest) -> list[pb.ProcessVodResponse]:
    return [update async for update in stub.ProcessVod(req)]


async def test_process_vod_streams_progress_and_clips(start_clipper: Any, vod: Path, unique: str) -> None:
    stub, _ = await start_clipper()
    updates = await collect(stub, request(vod, f"r-{unique}", render=True, max_clips=1, max_duration_seconds=5))
    stages = [u.stage for u in updates]
    assert stages[0] == pb.STAGE_QUEUED and stages[-1] == pb.STAGE_DONE, stages
    for stage in (pb.STAGE_ANALYZING_AUDIO, pb.STAGE_TRANSCRIBING, pb.STAGE_SCORING, pb.STAGE_RENDERING):
        assert stage in stages
    fractions = [u.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    clips = [u.clip for u in updates if u.HasField("clip")]
    assert len(clips) == 1
    clip = clips[0]
    assert clip.status == pb.CLIP_STATUS_RENDERED and clip.score.total > 0
    assert 4.0 <= clip.duration_seconds <= 5.0 + 1e-6
    assert any(abs(clip.start_seconds - t) < 8 for t in (10.0, 28.0)), "the clip is at a loud speech line"
    with av.open(clip.rendered_media_uri) as container:
        v = container.streams.video[0]
        assert (v.width, v.height) == (1080, 1920) and container.streams.audio
    assert Path(clip.thumbnail_uri).is_file() and Path(clip.source_media_uri).is_file()
    job = (await stub.GetJob(pb.GetJobRequest(job_id=updates[0].job_id))).job
    assert job.stage == pb.STAGE_DONE and list(job.clip_ids) == [clip.clip_id]
    assert job.source_duration_seconds == pytest.approx(40.0, abs=0.5)
    assert {"STAGE_ANALYZING_AUDIO", "STAGE_TRANSCRIBING", "STAGE_RENDERING"} <= set(job.stage_seconds)
    got = (await stub.GetClip(pb.GetClipRequest(clip_id=clip.clip_id))).clip
    assert got.clip_id == clip.clip_id and got.words == clip.words


async def test_same_request_id_attaches_instead_of_starting_again(start_clipper: Any, vod: Path, unique: str) -> None:
    stub, service = await start_clipper()
    req = request(vod, f"same-{unique}")
    first, second = await asyncio.gather(collect(stub, req), collect(stub, req))
    assert first[0].job_id == second[0].job_id
    assert second[-1].stage == pb.STAGE_DONE
    again = await collect(stub, req)  # a finished job: its state, then the stream ends
    assert len(again) == 1 and again[0].stage == pb.STAGE_DONE and again[0].job_id == first[0].job_id
    jobs = {u.job_id for u in first + second + again}
    assert len(jobs) == 1
    clips = service.store.job_clips(first[0].job_id)
    assert len(clips) == 2 and all(c.status == ClipStatus.CUT for c in clips)


async def test_list_clips_pages_newest_first_and_filters(start_clipper: Any, vod: Path, unique: str) -> None:
    stub, _ = await start_clipper()
    streamer = f"pager{unique}"
    req = request(vod, f"p-{unique}")
    req.streamer = streamer
    await collect(stub, req)
    page1 = await stub.ListClips(pb.ListClipsRequest(streamer=streamer, page_size=1))
    assert len(page1.clips) == 1 and page1.next_page_token
    page2 = await stub.ListClips(pb.ListClipsRequest(streamer=streamer, page_size=1, page_token=page1.next_page_token))
    assert len(page2.clips) == 1 and page2.clips[0].clip_id != page1.clips[0].clip_id
    page3 = await stub.ListClips(pb.ListClipsRequest(streamer=streamer, page_size=1, page_token=page2.next_page_token))
    assert not page3.clips and not page3.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListClips(pb.ListClipsRequest(streamer="other", page_token=page1.next_page_token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)[0][0] == "page_token"


async def test_a_job_whose_worker_died_is_resumed_once(start_clipper: Any, vod: Path, unique: str) -> None:
    """A job left mid-way by a dead worker (expired lease, clips saved as DETECTED) is claimed by a new
    service instance, which cuts the saved clips without detecting again."""
    stub, service = await start_clipper(job_lease_seconds=6)
    updates = await collect(stub, request(vod, f"res-{unique}"))
    done = service.store.job_clips(updates[0].job_id)
    # a second, unfinished job: what a crash after detection leaves behind
    options = Options(max_clips=2, min_duration_s=4, max_duration_s=8, render=False)
    job = Job(
        job_id=f"crashed{unique}", request_id=f"crash-{unique}", source_uri=str(vod), streamer="tester",
        stream_id="vod-crash", options=options,
    )  # fmt: skip
    service.store.create_job(job, owner="dead-worker", lease_s=-1)
    job.stage, job.fraction = Stage.CUTTING, 0.5
    service.store.update_job(job)
    for clip in done:
        clip.clip_id, clip.job_id, clip.status, clip.source_media_uri, clip.ready = (
            f"{job.job_id}-{clip.clip_id[-3:]}",
            job.job_id,
            ClipStatus.DETECTED,
            "",
            False,
        )
        service.store.save_clip(clip)
    other, _ = await start_clipper(job_lease_seconds=6)  # a new replica claims it at start
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        resumed = (await other.GetJob(pb.GetJobRequest(job_id=job.job_id))).job
        if resumed.stage == pb.STAGE_DONE:
            break
        await asyncio.sleep(0.5)
    assert resumed.stage == pb.STAGE_DONE, resumed
    clips = service.store.job_clips(job.job_id)
    assert len(clips) == len(done) and all(c.status == ClipStatus.CUT and c.source_media_uri for c in clips)
    assert "STAGE_TRANSCRIBING" not in resumed.stage_seconds  # detection was not run again


async def test_a_missing_source_fails_the_job_with_a_message(start_clipper: Any, tmp_path: Path, unique: str) -> None:
    stub, _ = await start_clipper()
    updates = await collect(stub, request(tmp_path / "nope.mp4", f"miss-{unique}"))
    assert updates[-1].stage == pb.STAGE_FAILED and "nope.mp4" in updates[-1].error


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"source_uri": " "}, "source_uri"),
        ({"streamer": ""}, "streamer"),
        ({"options": pb.ClipOptions(max_clips=51)}, "options.max_clips"),
        ({"options": pb.ClipOptions(min_duration_seconds=0.5)}, "options.min_duration_seconds"),
        ({"options": pb.ClipOptions(min_duration_seconds=20, max_duration_seconds=10)}, "options.max_duration_seconds"),
        ({"options": pb.ClipOptions(language="english")}, "options.language"),
    ],
)
async def test_invalid_process_requests_name_the_field(
    start_clipper: Any, vod: Path, change: dict[str, Any], field: str
) -> None:
    stub, _ = await start_clipper()
    req = pb.ProcessVodRequest(request_id="x", source_uri=str(vod), streamer="s")
    for key, value in change.items():
        if isinstance(value, pb.ClipOptions):
            req.options.CopyFrom(value)
        else:
            setattr(req, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(stub, req)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)[0][0] == field


async def test_unknown_ids_are_not_found_and_monitoring_needs_kick(start_clipper: Any) -> None:
    stub, _ = await start_clipper()
    for call in (stub.GetJob(pb.GetJobRequest(job_id="nope")), stub.GetClip(pb.GetClipRequest(clip_id="nope"))):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug="Bad Slug!"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)[0][0] == "channel_slug"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug="somebody"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PublishClip(pb.PublishClipRequest(clip_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def _unused(service: StreamClipperService) -> None:  # keeps the import for type checkers
    del service
