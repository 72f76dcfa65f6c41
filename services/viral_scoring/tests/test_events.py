"""viral_scoring on Kafka: clips.created and videos.generated become content.scored, interactions become labels and
retrain.requested, bad events go to the DLQ."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common import kafka_compat, topics
from creatormesh.common.bus import EventBus
from creatormesh.common.sample_media import make_video
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1 import clips_pb2, interactions_pb2, videos_pb2
from creatormesh.stream_clipper.v1 import stream_clipper_pb2
from creatormesh.viral_scoring.label_log import LabelLog
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb


async def events(broker: str, topic: str, match: Any, at_least: int = 1, timeout: float = 60.0) -> list[Any]:
    return await asyncio.to_thread(kafka_compat.read_events, broker, topic, match, at_least, timeout)


async def test_clips_and_videos_are_scored_into_content_scored(
    start_service: Any, redis_url: str, broker: str, unique: str, tmp_path: Path
) -> None:
    _, service = await start_service(broker, redis_prefix=f"test-viral-{unique}")
    bus = EventBus.from_settings(KitSettings(kafka_bootstrap=broker, redis_url=redis_url), "test")
    try:
        clip_id, video_id = f"clip-{unique}", f"gen-{unique}"
        media = make_video(tmp_path / "clip.mp4", seconds=2.0, cuts=1)
        clip = clips_pb2.ClipCreated(
            clip_id=clip_id, stream_id="s1", streamer="speedy", start_seconds=10, end_seconds=12, duration_seconds=2,
            transcript="No way! Did you see that jump? That is a new world record!", language="en",
            score=stream_clipper_pb2.ScoreParts(matched_keywords=["world record", "no way"]),
            rendered_media_uri=str(media), created_at=Timestamp(seconds=int(time.time())),
        )  # fmt: skip
        video = videos_pb2.VideoGenerated(
            job_id="j1", candidate_id=video_id, user_id="brand-1", prompt="a cat surfing a giant wave, cinematic",
            original_prompt="cat surfing", video_url=str(media), frames=48, fps=24, duration_seconds=2.0,
        )  # fmt: skip
        await bus.send_raw(topics.CLIPS_CREATED, b"\x00garbage", b"k", [])
        await bus.publish(topics.CLIPS_CREATED, clips_pb2.ClipCreated(clip_id=""), subject="none")
        await bus.publish(topics.CLIPS_CREATED, clip, subject=clip_id)
        await bus.publish(topics.VIDEOS_GENERATED, video, subject=video_id)
        scored = await events(broker, topics.CONTENT_SCORED, lambda p: p.content_id in {clip_id, video_id}, 2)
        by_id = {p.content_id: p for p in scored}
        assert set(by_id) == {clip_id, video_id}
        c = by_id[clip_id]
        assert c.kind == pb.CONTENT_KIND_CLIP and c.creator_id == "speedy" and 0 < c.v < 1
        assert c.model_version == service.model_version and c.stage == pb.STAGE_FULL
        assert {pb.MODALITY_TEXT, pb.MODALITY_VISUAL, pb.MODALITY_AUDIO} <= set(c.modalities)
        assert set(c.hashtags) == {"world record", "no way"} and c.media_uri == str(media) and c.quality_score == c.v
        assert c.subscores.hook_strength > 0 and c.HasField("published_at")
        assert by_id[video_id].kind == pb.CONTENT_KIND_GENERATED_VIDEO and by_id[video_id].creator_id == "brand-1"
        dead = await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.CLIPS_CREATED), 2)
        assert dead >= 2
    finally:
        await bus.close()


async def test_interactions_become_labels_and_request_a_retrain(
    start_service: Any, redis_url: str, broker: str, unique: str
) -> None:
    prefix = f"test-viral-{unique}"
    _, service = await start_service(broker, redis_prefix=prefix, retrain_after_labels=3)
    bus = EventBus.from_settings(KitSettings(kafka_bootstrap=broker, redis_url=redis_url), "test")
    try:
        kinds = [interactions_pb2.INTERACTION_TYPE_VIEW, interactions_pb2.INTERACTION_TYPE_SHARE] * 2
        for i, kind in enumerate(kinds):
            event = interactions_pb2.Interaction(
                user_id=f"u{i}", item_id=f"item-{unique}", type=kind, watch_fraction=0.5, arm="viral", experiment="e"
            )
            await bus.publish(topics.INTERACTIONS, event, subject=f"u{i}")
        await bus.publish(topics.INTERACTIONS, interactions_pb2.Interaction(user_id="u"), subject="u")  # no item
        uri = f"redis-stream:{prefix}:interactions"
        (request,) = await events(broker, topics.RETRAIN_REQUESTED, lambda p: p.dataset_uri == uri)
        assert request.model == "viral_scoring.viral_model" and request.threshold == 3 and request.sample_count == 3
        assert request.base_version == service.model_version

        log = LabelLog(service.runtime.redis(), prefix)
        deadline = time.monotonic() + 30
        while len(await log.labels()) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        labels = await log.labels()
        assert [x.type for x in labels] == ["view", "share", "view", "share"] and labels[0].arm == "viral"
        assert await log.engagement(f"item-{unique}") == {"view": 2, "share": 2}
        assert await asyncio.to_thread(kafka_compat.count_records, broker, topics.dlq(topics.INTERACTIONS), 1) >= 1
    finally:
        await bus.close()
