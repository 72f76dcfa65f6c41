"""stream_clipper on Kafka: finished clips go out on clips.created (not for dry runs), content.scored sets the
clip's viral score and drives the publish decision against a local TikTok API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creatormesh.common import kafka_compat, topics
from creatormesh.common.bus import EventBus
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1 import content_pb2
from creatormesh.stream_clipper.records import PublishStatus
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

from .media import speech_vod
from .tiktok_fake import FakeTikTok, FakeTikTokServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_vod(tmp_path_factory.mktemp("vod") / "events.mp4")


@pytest.fixture
def tiktok() -> Iterator[FakeTikTok]:
    with FakeTikTokServer() as server:
        yield server


async def events(broker: str, topic: str, match: Any, at_least: int = 1, timeout: float = 60.0) -> list[Any]:
    return await asyncio.to_thread(kafka_compat.read_events, broker, topic, match, at_least, timeout)


async def process(stub: Any, req: pb.ProcessVodRequest) -> list[pb.Clip]:
    clips = [u.clip async for u in stub.ProcessVod(req) if u.HasField("clip")]
    return clips


async def wait_publish(service: Any, clip_id: str, status: PublishStatus, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        clip = service.store.get_clip(clip_id)
        if clip.publish.status == status or time.monotonic() > deadline:
            return clip
        await asyncio.sleep(0.3)


async def test_clips_created_then_scores_drive_publishing(
    start_clipper: Any, broker: str, redis_url: str, vod: Path, tiktok: FakeTikTok, unique: str
) -> None:
    stub, service = await start_clipper(
        broker, auto_publish=True, publish_threshold=0.5, tiktok_client_key=tiktok.client_key,
        tiktok_client_secret=tiktok.client_secret, tiktok_api_url=tiktok.url, tiktok_refresh_token="rt-1",
        tiktok_poll_seconds=0.1,
    )  # fmt: skip
    options = pb.ClipOptions(max_clips=2, min_duration_seconds=4, max_duration_seconds=5)
    req = pb.ProcessVodRequest(request_id=f"ev-{unique}", source_uri=str(vod), streamer=f"s{unique}", options=options)
    clips = await process(stub, req)
    assert len(clips) == 2 and all(c.status == pb.CLIP_STATUS_RENDERED for c in clips)
    ids = {c.clip_id for c in clips}
    created = await events(broker, topics.CLIPS_CREATED, lambda p: p.clip_id in ids, 2)
    by_id = {p.clip_id: p for p in created}
    assert set(by_id) == ids
    for clip in clips:
        event = by_id[clip.clip_id]
        assert event.streamer == f"s{unique}" and event.job_id == clip.job_id and event.stream_id == clip.stream_id
        assert event.rendered_media_uri == clip.rendered_media_uri and Path(event.rendered_media_uri).is_file()
        assert event.score.total == clip.score.total and list(event.words) == list(clip.words)
        assert event.duration_seconds == pytest.approx(event.end_seconds - event.start_seconds)

    high, low = sorted(ids)
    bus = EventBus.from_settings(KitSettings(kafka_bootstrap=broker, redis_url=redis_url), "test")
    try:
        for content_id, v in ((high, 0.9), (low, 0.2), (f"not-a-clip-{unique}", 0.99)):
            await bus.publish(
                topics.CONTENT_SCORED, content_pb2.ContentScored(content_id=content_id, v=v), subject=content_id
            )
    finally:
        await bus.close()
    published = await wait_publish(service, high, PublishStatus.PUBLISHED)
    assert published.viral_score == pytest.approx(0.9) and published.publish.post_url
    skipped = await wait_publish(service, low, PublishStatus.SKIPPED)
    assert skipped.viral_score == pytest.approx(0.2) and "below" in skipped.publish.error
    assert len(tiktok.inits) == 1  # only the clip over the threshold was uploaded
    again = await stub.PublishClip(pb.PublishClipRequest(clip_id=high))
    assert again.already_published and again.publish.status == pb.PUBLISH_STATUS_PUBLISHED
    assert len(tiktok.inits) == 1


async def test_dry_run_announces_nothing(start_clipper: Any, broker: str, vod: Path, unique: str) -> None:
    stub, service = await start_clipper(broker)
    options = pb.ClipOptions(max_clips=1, min_duration_seconds=4, max_duration_seconds=5, render=False)
    dry = pb.ProcessVodRequest(
        request_id=f"dry-{unique}", source_uri=str(vod), streamer="dry", dry_run=True, options=options
    )
    real = pb.ProcessVodRequest(request_id=f"real-{unique}", source_uri=str(vod), streamer="real", options=options)
    (dry_clip,) = await process(stub, dry)
    (real_clip,) = await process(stub, real)
    await events(broker, topics.CLIPS_CREATED, lambda p: p.clip_id == real_clip.clip_id)
    wanted = {dry_clip.clip_id, real_clip.clip_id}  # the dry-run job finished first: its clip would be there by now
    seen = await events(broker, topics.CLIPS_CREATED, lambda p: p.clip_id in wanted, 2, timeout=3.0)
    assert [p.clip_id for p in seen] == [real_clip.clip_id]
    assert service.store.clips_to_announce() == []
