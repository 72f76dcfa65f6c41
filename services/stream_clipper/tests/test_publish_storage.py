"""Clips stored in S3 (a real s3rver) through the service, then published from there with the PublishClip RPC
against the local TikTok fake: skipped below the viral threshold, FAILED_PRECONDITION without TikTok, published
once, already_published after that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import grpc
import pytest

from creatormesh.common.runtime.s3_server import ACCESS_KEY, SECRET_KEY
from creatormesh.common.storage import S3Storage
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

from .media import speech_vod
from .tiktok_fake import FakeTikTokServer


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s with one loud speech line at 6 s."""
    return speech_vod(tmp_path_factory.mktemp("s3vod") / "short.mp4", seconds=16.0, at=(6.0,))


def decode_first_frame(path: Path) -> tuple[int, int]:
    """(width, height) of the first decoded video frame of ``path``."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def test_s3_clip_is_published_once_from_storage(
    start_clipper: Any, s3_endpoint: str, vod: Path, unique: str, tmp_path: Path
) -> None:
    bucket = f"clips-{unique}"
    storage = S3Storage(
        bucket, endpoint_url=s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, create_bucket=True
    )
    s3 = {
        "storage": f"s3://{bucket}/media",
        "s3_endpoint_url": s3_endpoint,
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
    }
    with FakeTikTokServer() as fake:
        fake.statuses = ["PUBLISH_COMPLETE"]
        tiktok = {
            "tiktok_client_key": fake.client_key, "tiktok_client_secret": fake.client_secret,
            "tiktok_api_url": fake.url, "tiktok_refresh_token": "rt-1",
        }  # fmt: skip
        stub, _ = await start_clipper(**s3, **tiktok)
        options = pb.ClipOptions(max_clips=1, min_duration_seconds=4, max_duration_seconds=5, render=True)
        request = pb.ProcessVodRequest(request_id=f"s3-{unique}", source_uri=str(vod), streamer="s3er", options=options)
        updates = [u async for u in stub.ProcessVod(request)]
        assert updates[-1].stage == pb.STAGE_DONE, updates[-1]
        (clip,) = [u.clip for u in updates if u.HasField("clip")]
        assert clip.status == pb.CLIP_STATUS_RENDERED
        uris = {"rendered": clip.rendered_media_uri, "source": clip.source_media_uri, "thumb": clip.thumbnail_uri}
        for name, uri in uris.items():
            assert uri.startswith(f"s3://{bucket}/media/"), (name, uri)
            assert storage.exists(uri), uri
        rendered = storage.get_file(uris["rendered"], tmp_path / "dl" / "rendered.mp4")
        assert decode_first_frame(rendered) == (1080, 1920)
        assert decode_first_frame(storage.get_file(uris["source"], tmp_path / "dl" / "source.mp4")) == (320, 180)
        assert decode_first_frame(storage.get_file(uris["thumb"], tmp_path / "dl" / "thumb.jpg"))[0] > 0

        # no viral score yet and the threshold is not ignored: skipped, with the reason on the clip
        skipped = await stub.PublishClip(pb.PublishClipRequest(clip_id=clip.clip_id))
        assert skipped.publish.status == pb.PUBLISH_STATUS_SKIPPED and not skipped.already_published
        assert "viral score not known yet" in skipped.publish.error
        assert fake.count("/v2/post/publish/video/init/") == 0

        # a replica without TikTok settings (same database and bucket) cannot publish
        bare, _ = await start_clipper(**s3)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await bare.PublishClip(pb.PublishClipRequest(clip_id=clip.clip_id, ignore_viral_threshold=True))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "TikTok" in (err.value.details() or "")

        publish = pb.PublishClipRequest(clip_id=clip.clip_id, ignore_viral_threshold=True)
        first = await stub.PublishClip(publish)
        assert first.publish.status == pb.PUBLISH_STATUS_PUBLISHED, first.publish
        assert not first.already_published and first.publish.post_url.endswith(str(fake.post_id))
        second = await stub.PublishClip(publish)
        assert second.already_published and second.publish.status == pb.PUBLISH_STATUS_PUBLISHED
        again = await bare.PublishClip(publish)  # the published state is in the shared database
        assert again.already_published

        assert fake.count("/v2/post/publish/video/init/") == 1
        (uploaded,) = fake.uploads.values()
        assert bytes(uploaded) == rendered.read_bytes(), "TikTok got the rendered clip from S3"
        stored = (await stub.GetClip(pb.GetClipRequest(clip_id=clip.clip_id))).clip
        assert stored.publish.status == pb.PUBLISH_STATUS_PUBLISHED and stored.publish.publish_id
