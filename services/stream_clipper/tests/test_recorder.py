"""Recorder against the fake's live HLS stream (12 s of real video in 1 s segments) with the real ffmpeg."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import httpx
import pytest

from creatormesh.stream_clipper.kick import KickClient
from creatormesh.stream_clipper.recorder import Chunk, Recorder
from creatormesh.stream_clipper.tokens import MemoryTokenStore

from .kick_fake import CLIENT_ID, CLIENT_SECRET, FakeKickServer, HlsMedia, build_hls

SECONDS = 12.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> HlsMedia:
    return build_hls(tmp_path_factory.mktemp("hls"), seconds=SECONDS, segment_s=1.0)


@pytest.fixture
def fake(media: HlsMedia) -> Iterator[FakeKickServer]:
    with FakeKickServer(media) as server:
        server.kick.add_channel("alpha")
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def go_live(fake: FakeKickServer, http: httpx.AsyncClient) -> str:
    """Start the fake stream and resolve its HLS URL the way the service does."""
    fake.kick.go_live("alpha")
    client = KickClient(
        http, MemoryTokenStore(), client_id=CLIENT_ID, client_secret=CLIENT_SECRET, playback_api=fake.playback_api
    )
    return await client.playback_url("alpha")


def duration(path: Path) -> float:
    """Seconds of decoded video in a chunk (frames * frame time), decoding every frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert container.streams.audio, "audio track missing"
        return frames / float(stream.average_rate or 25)


def chunk_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("chunk_*.ts"))


def check_timeline(chunks: list[Chunk]) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for before, after in itertools.pairwise(chunks):
        assert after.start_s == pytest.approx(before.end_s, abs=1e-6)
    assert all(c.end_s > c.start_s for c in chunks)


async def test_records_live_stream_in_chunks(fake: FakeKickServer, http: httpx.AsyncClient, tmp_path: Path) -> None:
    url = await go_live(fake, http)
    playlist = (await http.get(url)).text
    assert "#EXT-X-ENDLIST" not in playlist and "seg_0000.ts" in playlist  # live, only the start revealed
    got: list[Chunk] = []

    async def on_chunk(chunk: Chunk) -> None:
        assert chunk.path.is_file()
        got.append(chunk)

    recorder = Recorder(url, tmp_path / "rec", chunk_s=4, on_chunk=on_chunk, stall_timeout_s=20)
    count = await asyncio.wait_for(recorder.run(), timeout=45)
    assert count == len(got) == 3 and recorder.returncode == 0
    check_timeline(got)
    assert got[0].start_s == 0.0 and got[-1].end_s == pytest.approx(SECONDS, abs=0.6)
    decoded = [duration(c.path) for c in got]
    assert all(3.0 < d < 5.0 for d in decoded)
    assert sum(decoded) == pytest.approx(SECONDS, abs=0.6)
    assert json.loads((tmp_path / "rec" / "delivered.json").read_text()) == [0, 1, 2]
    assert "#EXT-X-ENDLIST" in (await http.get(url)).text
    # a new recorder on the same directory (stopped before it starts ffmpeg) delivers nothing twice
    again: list[Chunk] = []

    async def collect(chunk: Chunk) -> None:
        again.append(chunk)

    idle = Recorder(url, tmp_path / "rec", chunk_s=4, on_chunk=collect)
    idle.stop()
    assert await idle.run() == 0 and again == []


async def test_stop_finishes_current_chunk(fake: FakeKickServer, http: httpx.AsyncClient, tmp_path: Path) -> None:
    url = await go_live(fake, http)
    got: list[Chunk] = []

    async def on_chunk(chunk: Chunk) -> None:
        got.append(chunk)
        recorder.stop()

    recorder = Recorder(url, tmp_path, chunk_s=4, on_chunk=on_chunk, stall_timeout_s=20)
    assert await asyncio.wait_for(recorder.run(), timeout=30) == 2
    assert recorder.returncode == 0  # ffmpeg quit on 'q', it was not killed
    check_timeline(got)
    assert got[1].end_s < SECONDS - 2  # stopped well before the stream's end
    assert 0.2 < duration(got[1].path) < 4.5
    assert chunk_files(tmp_path) == ["chunk_00000.ts", "chunk_00001.ts"]


async def test_stalled_stream_is_killed(fake: FakeKickServer, http: httpx.AsyncClient, tmp_path: Path) -> None:
    url = await go_live(fake, http)
    got: list[Chunk] = []

    async def on_chunk(chunk: Chunk) -> None:
        got.append(chunk)

    recorder = Recorder(url, tmp_path, chunk_s=4, on_chunk=on_chunk, stall_timeout_s=2)
    task = asyncio.create_task(recorder.run())
    await asyncio.sleep(1.5)
    fake.kick.freeze("alpha")  # still live, but no new segments
    assert await asyncio.wait_for(task, timeout=20) == 0
    assert got == [] and recorder.returncode not in (None, 0)


async def test_resume_after_crash(fake: FakeKickServer, http: httpx.AsyncClient, tmp_path: Path) -> None:
    url = await go_live(fake, http)
    first: list[Chunk] = []
    delivered = asyncio.Event()

    async def on_first(chunk: Chunk) -> None:
        first.append(chunk)
        delivered.set()

    task = asyncio.create_task(Recorder(url, tmp_path, chunk_s=4, on_chunk=on_first, stall_timeout_s=20).run())
    await asyncio.wait_for(delivered.wait(), timeout=20)
    await asyncio.sleep(1.5)  # chunk 1 is half written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [c.index for c in first] == [0]
    assert (tmp_path / "chunk_00001.ts").is_file()  # the incomplete chunk the crash left

    second: list[Chunk] = []

    async def on_second(chunk: Chunk) -> None:
        assert chunk.path.is_file()
        second.append(chunk)

    resumed = Recorder(url, tmp_path, chunk_s=4, on_chunk=on_second, stall_timeout_s=20)
    count = await asyncio.wait_for(resumed.run(), timeout=30)
    assert count == len(second) >= 1
    indexes = [c.index for c in first + second]
    assert len(indexes) == len(set(indexes))  # nothing delivered twice
    check_timeline(first + second)  # numbering continues at 1, the timeline continues at chunk 0's end
    assert second[0].start_s == pytest.approx(first[0].end_s)
    assert all(duration(c.path) > 0.2 for c in second)
    assert json.loads((tmp_path / "delivered.json").read_text()) == indexes
