"""Sources of a job: local paths, file:// and http(s) downloads; chat logs for the chat-velocity score."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from creatormesh.stream_clipper.chat import load_chat_times, parse_chat
from creatormesh.stream_clipper.sources import SourceError, fetch_source, local_path, probe
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

from .media import speech_vod


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A 16 s VOD served over HTTP from a directory: (base URL, file)."""
    root = tmp_path_factory.mktemp("www")
    vod = speech_vod(root / "vod.mp4", seconds=16.0, at=(6.0,), cuts=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", vod
    server.shutdown()


def test_local_path_forms() -> None:
    assert local_path("/a/b.mp4") == Path("/a/b.mp4")
    assert local_path("file:///a/b%20c.mp4") == Path("/a/b c.mp4")
    assert local_path("relative/x.mp4") == Path("relative/x.mp4")
    assert local_path("https://example.com/x.mp4") is None
    assert local_path("s3://bucket/x.mp4") is None


async def test_http_source_is_downloaded_whole(served: tuple[str, Path], tmp_path: Path) -> None:
    base, vod = served
    got = await fetch_source(f"{base}/vod.mp4", tmp_path / "dl")
    assert got.read_bytes() == vod.read_bytes()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["vod.mp4"]  # no partial file left
    info = probe(got)
    assert info.has_audio and info.has_video and info.duration_s == pytest.approx(16.0, abs=0.3)
    with pytest.raises(SourceError, match="HTTP 404"):
        await fetch_source(f"{base}/missing.mp4", tmp_path / "dl2")
    assert not any((tmp_path / "dl2").iterdir())


async def test_missing_and_non_media_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a readable file"):
        await fetch_source(str(tmp_path / "nope.mp4"), tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="not a readable media file"):
        probe(junk)


async def test_process_vod_from_a_url(start_clipper: Any, served: tuple[str, Path], unique: str) -> None:
    stub, _ = await start_clipper()
    base, _ = served
    options = pb.ClipOptions(max_clips=1, min_duration_seconds=4, max_duration_seconds=6, render=False)
    req = pb.ProcessVodRequest(
        request_id=f"url-{unique}", source_uri=f"{base}/vod.mp4", streamer="web", options=options
    )
    updates = [u async for u in stub.ProcessVod(req)]
    assert pb.STAGE_DOWNLOADING in [u.stage for u in updates] and updates[-1].stage == pb.STAGE_DONE
    (clip,) = [u.clip for u in updates if u.HasField("clip")]
    assert 2.0 <= clip.start_seconds <= 8.0 and Path(clip.source_media_uri).is_file()


def test_chat_log_times(tmp_path: Path) -> None:
    log = tmp_path / "chat.jsonl"
    log.write_text('{"timestamp": 12.5, "message": "W"}\n\n{"t": 3, "message": "lol"}\n', encoding="utf-8")
    assert load_chat_times(str(log)) == [3.0, 12.5]
    with pytest.raises(SourceError, match="line 1: not JSON"):
        parse_chat("{oops")
    with pytest.raises(SourceError, match="line 2: needs a non-negative 'timestamp'"):
        parse_chat('{"timestamp": 1}\n{"message": "no time"}')
    with pytest.raises(SourceError, match="not a readable local file"):
        load_chat_times(str(tmp_path / "none.jsonl"))
