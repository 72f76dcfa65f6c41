"""Live clipping over real gRPC: StartMonitoring a channel of the fake Kick, which goes live with a real HLS stream
of loud keyword speech; the service records it in 10 s chunks with ffmpeg and clips every chunk (pocketsphinx,
times on the stream timeline), resumes unprocessed chunks after a restart, and shows Kick errors on the channel."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest

from creatormesh.common.media import ffmpeg_exe
from creatormesh.stream_clipper.records import MonitorState
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

from .kick_fake import CLIENT_ID, CLIENT_SECRET, FakeKickServer, HlsMedia, build_hls
from .media import speech_vod

SECONDS = 24.0
RECORDING, OFFLINE = pb.MONITOR_STATE_RECORDING, pb.MONITOR_STATE_OFFLINE
SPEECH_AT = (3.0, 13.0)
"""Loud speech lines in the live stream: one in the first 10 s chunk, one in the second."""


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_vod(tmp_path_factory.mktemp("live-vod") / "live.mp4", seconds=SECONDS, at=SPEECH_AT)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, vod: Path) -> HlsMedia:
    return build_hls(tmp_path_factory.mktemp("live-hls"), source=vod)


@pytest.fixture
def fake(media: HlsMedia) -> Iterator[FakeKickServer]:
    with FakeKickServer(media) as server:
        yield server


def kick_settings(fake: FakeKickServer) -> dict[str, Any]:
    return {
        "kick_client_id": CLIENT_ID, "kick_client_secret": CLIENT_SECRET, "kick_auth_url": fake.auth_url,
        "kick_api_url": fake.url, "kick_playback_api": fake.playback_api, "kick_poll_seconds": 0.5,
    }  # fmt: skip


OPTIONS = pb.ClipOptions(max_clips=1, min_duration_seconds=4, max_duration_seconds=8, render=False)


async def channel_of(stub: Any, slug: str) -> pb.MonitoredChannel | None:
    channels = (await stub.ListMonitoredChannels(pb.ListMonitoredChannelsRequest())).channels
    return next((c for c in channels if c.channel_slug == slug), None)


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Polls `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_channel(
    stub: Any, slug: str, ok: Callable[[pb.MonitoredChannel], object], timeout: float, what: str
) -> pb.MonitoredChannel:
    """Polls ListMonitoredChannels until the channel satisfies `ok`; a timeout shows the last state seen."""
    seen: list[pb.MonitoredChannel | None] = [None]

    async def check() -> pb.MonitoredChannel | None:
        seen[0] = ch = await channel_of(stub, slug)
        return ch if ch is not None and ok(ch) else None

    try:
        result: pb.MonitoredChannel = await wait_for(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[0]}") from None
    return result


def decoded_seconds(path: str) -> float:
    with av.open(path) as container:
        assert container.streams.audio, "audio track missing"
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)) / float(stream.average_rate or 25)


async def test_live_channel_is_recorded_in_chunks_and_clipped(
    fake: FakeKickServer, start_clipper: Any, unique: str
) -> None:
    slug = f"live-{unique[:8]}"
    fake.kick.add_channel(slug)
    stub, _ = await start_clipper(**kick_settings(fake))
    started = await stub.StartMonitoring(
        pb.StartMonitoringRequest(channel_slug=slug.upper(), chunk_seconds=10, options=OPTIONS)
    )
    assert not started.already_monitored and started.channel.channel_slug == slug
    assert started.channel.state == pb.MONITOR_STATE_OFFLINE and started.channel.chunk_seconds == 10

    fake.kick.go_live(slug)
    live_at = time.monotonic()

    channel = await wait_channel(stub, slug, lambda c: c.state == RECORDING and c.stream_id != "", 10, "RECORDING")
    stream_id = channel.stream_id
    assert stream_id.startswith(f"kick-{slug}-") and channel.HasField("last_live_at")

    await asyncio.sleep(max(0.0, SECONDS + 0.5 - (time.monotonic() - live_at)))  # the media has run out
    fake.kick.end_stream(slug)

    channel = await wait_channel(
        stub, slug, lambda c: c.state == OFFLINE and c.chunks_recorded >= 2, 20, "OFFLINE with chunks"
    )

    seen: dict[str, Any] = {}

    async def first_chunks_clipped() -> bool:
        seen["channel"] = ch = await channel_of(stub, slug)
        seen["clips"] = got = list((await stub.ListClips(pb.ListClipsRequest(stream_id=stream_id))).clips)
        done = {"k00000", "k00001"} <= {c.clip_id.rsplit("-", 2)[1] for c in got}
        return done and ch is not None and ch.clips_created == len(got)

    try:
        await wait_for(first_chunks_clipped, 120, "clips of the first two chunks")  # slow on a loaded machine
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None
    channel, found = seen["channel"], seen["clips"]
    assert channel.chunks_recorded == 3, channel
    assert channel.state == pb.MONITOR_STATE_OFFLINE and channel.error == ""
    by_chunk = {c.clip_id.rsplit("-", 2)[1]: c for c in found}
    for index, speech in enumerate(SPEECH_AT):
        clip = by_chunk[f"k{index:05d}"]
        assert clip.job_id == "" and clip.stream_id == stream_id and clip.streamer == slug
        assert clip.status == pb.CLIP_STATUS_CUT and clip.score.total > 0
        assert 10.0 * index <= clip.start_seconds < clip.end_seconds <= 10.0 * (index + 1) + 0.5, clip
        assert abs(clip.start_seconds - speech) < 5.0, "the clip is at the loud speech line (stream timeline)"
        assert 4.0 <= clip.duration_seconds <= 8.0 + 1e-6
        assert clip.words and all(clip.start_seconds - 0.1 <= w.start_seconds for w in clip.words)
        assert decoded_seconds(clip.source_media_uri) == pytest.approx(clip.duration_seconds, abs=1.0)

    again = await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug=slug, chunk_seconds=10, options=OPTIONS))
    assert again.already_monitored and again.channel.clips_created == len(found)
    assert (await stub.StopMonitoring(pb.StopMonitoringRequest(channel_slug=slug))).was_monitored
    assert not (await stub.StopMonitoring(pb.StopMonitoringRequest(channel_slug=slug))).was_monitored
    assert await channel_of(stub, slug) is None


def ts_chunk(vod: Path, out: Path, start: float, seconds: float) -> Path:
    """A chunk like the recorder writes (MPEG-TS, a keyframe a second): `seconds` of the VOD from `start`."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-ss", f"{start}", "-i", str(vod)]
    cmd += ["-t", f"{seconds}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "mpegts"]
    cmd.append(str(out))
    subprocess.run(cmd, check=True, capture_output=True)
    return out


async def test_unprocessed_chunk_is_clipped_after_a_restart(
    fake: FakeKickServer, start_clipper: Any, vod: Path, unique: str, tmp_path: Path
) -> None:
    slug = f"resume-{unique[:8]}"
    fake.kick.add_channel(slug)
    stub, service = await start_clipper(**kick_settings(fake))
    await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug=slug, chunk_seconds=10, options=OPTIONS))
    assert service.live is not None
    await service.live.stop()  # the live side dies after the chunk was recorded, before it was clipped
    stream_id = f"kick-{slug}-20260101T000000"
    chunk = ts_chunk(vod, tmp_path / "chunk_00004.ts", 10.0, 10.0)  # speech 3 s into the chunk
    assert service.store.record_chunk(slug, stream_id, 4, str(chunk), 40.0, 50.0)
    stored = service.store.get_channel(slug)
    assert stored is not None  # it was recording when the service died; the stream ended during the downtime
    service.store.save_channel(replace(stored, state=MonitorState.RECORDING, stream_id=stream_id, chunks_recorded=5))
    assert not (await stub.ListClips(pb.ListClipsRequest(stream_id=stream_id))).clips

    stub2, service2 = await start_clipper(**kick_settings(fake))

    async def clipped() -> list[pb.Clip]:
        got = list((await stub2.ListClips(pb.ListClipsRequest(stream_id=stream_id))).clips)
        return got if got and all(c.status == pb.CLIP_STATUS_CUT for c in got) else []

    [clip] = await wait_for(clipped, 30, "the resumed chunk's clip, cut")
    assert clip.clip_id == f"{stream_id}-k00004-c00" and clip.job_id == "" and clip.streamer == slug
    assert 40.0 <= clip.start_seconds < clip.end_seconds <= 50.0 + 0.5
    assert abs(clip.start_seconds - 43.0) < 5.0 and 4.0 <= clip.duration_seconds <= 8.0 + 1e-6
    assert decoded_seconds(clip.source_media_uri) == pytest.approx(clip.duration_seconds, abs=1.0)

    async def processed() -> bool:
        return not await asyncio.to_thread(service2.store.pending_chunks)

    await wait_for(processed, 10, "the chunk marked processed")

    channel = await wait_channel(
        stub2,
        slug,
        lambda c: c.state == OFFLINE and c.clips_created > 0,
        10,
        "OFFLINE (the stream ended while the service was down)",
    )
    assert channel.clips_created == 1 and channel.options.max_clips == 1 and channel.chunks_recorded == 5

    fake.kick.go_live(slug)  # a new stream: chunks are counted from 0 again

    channel = await wait_channel(
        stub2, slug, lambda c: c.state == RECORDING and c.stream_id != stream_id, 10, "RECORDING the new stream"
    )
    assert channel.chunks_recorded == 0
    await asyncio.sleep(2.0)  # RECORDING is stored before the playback URL is read and ffmpeg gets the playlist
    fake.kick.end_stream(slug)

    await wait_channel(
        stub2, slug, lambda c: c.state == OFFLINE and c.chunks_recorded == 1, 15, "OFFLINE after one short chunk"
    )


async def test_kick_errors_show_on_the_channel_then_it_recovers(
    fake: FakeKickServer, start_clipper: Any, unique: str
) -> None:
    slug = f"err-{unique[:8]}"
    fake.kick.add_channel(slug)
    stub, _ = await start_clipper(**kick_settings(fake))
    await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug=slug, chunk_seconds=10, options=OPTIONS))

    async def polled() -> bool:
        return bool(fake.kick.channel_requests)

    await wait_for(polled, 10, "a first poll")
    fake.kick.fail(2, 500)

    channel = await wait_channel(stub, slug, lambda c: c.state == pb.MONITOR_STATE_ERROR, 10, "state ERROR")
    assert "500" in channel.error, channel.error

    channel = await wait_channel(stub, slug, lambda c: c.state == pb.MONITOR_STATE_OFFLINE, 15, "state OFFLINE again")
    assert channel.error == "" and channel.HasField("last_checked_at")


async def test_a_stalled_recording_is_restarted_while_the_channel_is_live(
    fake: FakeKickServer, start_clipper: Any, unique: str
) -> None:
    slug = f"stall-{unique[:8]}"
    fake.kick.add_channel(slug)
    stub, service = await start_clipper(**kick_settings(fake), record_stall_seconds=2.0)
    await stub.StartMonitoring(pb.StartMonitoringRequest(channel_slug=slug, chunk_seconds=10, options=OPTIONS))
    fake.kick.go_live(slug)
    await wait_channel(stub, slug, lambda c: c.state == RECORDING, 10, "RECORDING")
    assert service.live is not None

    async def recording() -> Any:
        return _recorder(service, slug)

    first = await wait_for(recording, 10, "a recorder")
    await asyncio.sleep(3.0)
    fake.kick.freeze(slug)  # ffmpeg gets no new segments: killed after 2 s without progress

    async def replaced() -> Any:
        current = _recorder(service, slug)
        return current if current is not None and current is not first else None

    await wait_for(replaced, 20, "a new recorder after the stall")
    fake.kick.thaw(slug)
    fake.kick.end_stream(slug)
    await wait_channel(stub, slug, lambda c: c.state == OFFLINE, 30, "OFFLINE")


def _recorder(service: Any, slug: str) -> Any:
    entry = service.live._recorders.get(slug)
    return None if entry is None else entry[0]
