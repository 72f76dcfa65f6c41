"""TikTok publishing against a local fake of the Content Posting API (real HTTP, real Redis)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from creatormesh.common.sample_media import make_video
from creatormesh.stream_clipper.publisher import MemoryPublisherState, Publisher, RedisPublisherState
from creatormesh.stream_clipper.tiktok import MB, TikTokClient, TikTokError, plan_chunks
from creatormesh.stream_clipper.tokens import MemoryTokenStore, RedisTokenStore, Token, TokenStore

from .tiktok_fake import FakeTikTok, FakeTikTokServer

INIT = "/v2/post/publish/video/init/"


@pytest.fixture
def fake() -> Iterator[FakeTikTok]:
    with FakeTikTokServer() as server:
        yield server


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1 s 9:16 mp4 (single-chunk size)."""
    return make_video(tmp_path_factory.mktemp("tiktok") / "clip.mp4", seconds=1.0, size=(180, 320))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def good_token(access: str = "at-1", refresh: str = "rt-1") -> Token:
    now = time.time()
    return Token(access, now + 3600, refresh, now + 86400, "video.publish", "open-1")


async def make_client(http: httpx.AsyncClient, fake: FakeTikTok, store: TokenStore | None = None) -> TikTokClient:
    store = store or MemoryTokenStore()
    if await store.load("tiktok:user") is None:
        await store.save("tiktok:user", good_token())
    return TikTokClient(http, store, client_key="ck-test", client_secret="cs-test", api_url=fake.url)


def publisher(client: TikTokClient, *, base_backoff_s: float = 60.0, max_backoff_s: float = 3600.0) -> Publisher:
    return Publisher(
        client,
        MemoryPublisherState(),
        poll_interval_s=0.01,
        poll_timeout_s=5.0,
        base_backoff_s=base_backoff_s,
        max_backoff_s=max_backoff_s,
    )


def test_plan_chunks_rules() -> None:
    assert plan_chunks(3 * MB, True) == plan_chunks(3 * MB, False) == plan_chunks(3 * MB, True, 5 * MB)
    assert plan_chunks(3 * MB, True).chunk_count == 1 and plan_chunks(3 * MB, True).chunk_size == 3 * MB
    plan = plan_chunks(50_000_123, True, 10_000_000)  # the Media Transfer Guide's example
    assert (plan.chunk_size, plan.chunk_count) == (10_000_000, 5)
    assert plan.ranges()[-1] == (40_000_000, 50_000_122)
    assert plan_chunks(7 * MB, True).chunk_count == 1  # smaller than one 10 MB chunk
    assert plan_chunks(200 * MB, False).chunk_count > 1  # over 64 MB must be chunked
    assert plan_chunks(100 * MB, True, 1 * MB).chunk_size == 5 * MB  # clamped to the 5 MB minimum


async def test_multipart_upload_sends_exact_bytes(tmp_path: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    video = tmp_path / "clip.mp4"
    payload = os.urandom(11 * MB + 12345)
    video.write_bytes(payload)
    client = await make_client(http, fake)
    plan = plan_chunks(len(payload), True, chunk_size=5 * MB)
    assert (plan.chunk_size, plan.chunk_count) == (5 * MB, 2)
    publish_id, url = await client.init_upload(plan, title="hi", privacy_level="PUBLIC_TO_EVERYONE")
    await client.upload(url, video, plan)
    assert publish_id and [c.content_range for c in fake.chunks] == [
        f"bytes 0-{5 * MB - 1}/{len(payload)}",
        f"bytes {5 * MB}-{len(payload) - 1}/{len(payload)}",
    ]
    assert len(fake.chunks[1].data) > len(fake.chunks[0].data)  # the last chunk takes the remainder
    assert all(c.content_type == "video/mp4" for c in fake.chunks)
    assert b"".join(c.data for c in fake.chunks) == payload
    source = fake.inits[0]["source_info"]
    assert source == {"source": "FILE_UPLOAD", "video_size": len(payload), "chunk_size": 5 * MB, "total_chunk_count": 2}


async def test_single_chunk_publish(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    pub = publisher(await make_client(http, fake))
    out = await pub.publish(video, caption="a clip #fyp", strategy="SINGLE")
    assert out.status == "PUBLISHED", out
    assert out.post_url == f"https://www.tiktok.com/@fake_creator/video/{fake.post_id}"
    assert out.attempts == 1 and out.published_at is not None and not out.sandbox
    assert len(fake.chunks) == 1 and fake.chunks[0].data == await asyncio.to_thread(video.read_bytes)
    assert fake.inits[0]["post_info"]["title"] == "a clip #fyp"
    assert fake.inits[0]["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"


async def test_pull_from_url(tmp_path: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    pub = publisher(await make_client(http, fake))
    out = await pub.publish(tmp_path / "absent.mp4", caption="c", pull_url="https://cdn.example.com/c.mp4")
    assert out.status == "PUBLISHED" and out.publish_id
    assert fake.inits[0]["source_info"] == {"source": "PULL_FROM_URL", "video_url": "https://cdn.example.com/c.mp4"}
    assert fake.chunks == []


async def test_expired_token_is_refreshed_and_saved(fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    store = MemoryTokenStore()
    await store.save("tiktok:user", Token("at-old", time.time() - 10, "rt-1", time.time() + 1000))
    client = await make_client(http, fake, store)
    info = await client.creator_info()
    assert info["creator_username"] == "fake_creator"
    assert fake.refreshes == [
        {"client_key": "ck-test", "client_secret": "cs-test", "grant_type": "refresh_token", "refresh_token": "rt-1"}
    ]
    saved = await store.load("tiktok:user")
    assert saved is not None and saved.access_token == "at-2" and saved.refresh_token == "rt-2"
    assert saved.expires_at > time.time() + 86000 and saved.open_id == "open-1"


async def test_revoked_token_refresh_with_redis_store(
    fake: FakeTikTok, http: httpx.AsyncClient, redis_url: str, unique: str
) -> None:
    store = RedisTokenStore(redis_url, prefix=f"test:{unique}:")
    await store.save("tiktok:user", good_token())
    fake.valid_tokens.clear()  # the server revoked at-1 although it has not expired: 401 access_token_invalid
    client = await make_client(http, fake, store)
    assert (await client.creator_info())["creator_username"] == "fake_creator"
    saved = await RedisTokenStore(redis_url, prefix=f"test:{unique}:").load("tiktok:user")
    assert saved is not None and saved.access_token == "at-2" and len(fake.refreshes) == 1


async def test_refresh_expired_raises(fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    store = MemoryTokenStore()
    await store.save("tiktok:user", Token("at-old", time.time() - 10, "rt-1", time.time() - 1))
    client = await make_client(http, fake, store)
    with pytest.raises(TikTokError) as err:
        await client.access_token()
    assert err.value.code == "refresh_token_expired" and fake.requests == []
    fake.refresh_tokens.clear()  # refresh token unknown to the server
    await store.save("tiktok:user", Token("at-old", time.time() - 10, "rt-1", time.time() + 100))
    with pytest.raises(TikTokError) as err:
        await client.access_token()
    assert err.value.code == "invalid_grant" and err.value.http_status == 400


async def test_rate_limited_twice_then_waits_and_publishes(
    video: Path, fake: FakeTikTok, http: httpx.AsyncClient
) -> None:
    fake.rate_limit_init = 2
    pub = publisher(await make_client(http, fake), base_backoff_s=0.05)
    started = time.monotonic()
    out = await pub.publish(video, caption="c", wait_when_rate_limited=True, max_wait_s=10)
    assert out.status == "PUBLISHED" and out.attempts == 3 and fake.count(INIT) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # slept through both exponential windows
    assert await pub.state.get_backoff() == (0.0, 0)  # success resets the failures


async def test_rate_limited_without_wait_is_pending(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    fake.rate_limit_init = 1
    pub = publisher(await make_client(http, fake), base_backoff_s=60.0)
    before = time.time()
    out = await pub.publish(video, caption="c")
    assert out.status == "PENDING" and out.next_attempt_at is not None and out.attempts == 1
    assert before + 60 <= out.next_attempt_at <= time.time() + 75
    seen = len(fake.requests)
    again = await pub.publish(video, caption="other clip", attempts_so_far=1)  # same account: same window
    assert again.status == "PENDING" and again.next_attempt_at == out.next_attempt_at and again.attempts == 1
    assert len(fake.requests) == seen
    # a wait that does not fit max_wait_s also returns PENDING at once
    waited = await pub.publish(video, caption="c", wait_when_rate_limited=True, max_wait_s=5)
    assert waited.status == "PENDING" and len(fake.requests) == seen


async def test_retry_after_header_extends_backoff(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    fake.rate_limit_init, fake.retry_after = 1, "120"
    out = await publisher(await make_client(http, fake), base_backoff_s=1.0).publish(video, caption="c")
    assert out.status == "PENDING" and out.next_attempt_at is not None and out.next_attempt_at >= time.time() + 110


async def test_sandbox_retries_self_only(
    video: Path, fake: FakeTikTok, http: httpx.AsyncClient, redis_url: str, unique: str
) -> None:
    fake.sandbox = True
    state = RedisPublisherState(redis_url, prefix=f"test:{unique}:")
    pub = Publisher(await make_client(http, fake), state, poll_interval_s=0.01, poll_timeout_s=5.0)
    out = await pub.publish(video, caption="c")
    assert out.status == "PUBLISHED" and out.sandbox and out.attempts == 2
    assert [i["post_info"]["privacy_level"] for i in fake.inits] == ["PUBLIC_TO_EVERYONE", "SELF_ONLY"]
    assert await RedisPublisherState(redis_url, prefix=f"test:{unique}:").get_sandbox()
    await pub.publish(video, caption="c2")
    assert fake.inits[-1]["post_info"]["privacy_level"] == "SELF_ONLY" and len(fake.inits) == 3
    await pub.clear_sandbox_state()
    assert not await state.get_sandbox()
    fake.sandbox = False
    await pub.publish(video, caption="c3")
    assert fake.inits[-1]["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"


async def test_failed_status(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    fake.statuses = ["PROCESSING_UPLOAD", "PROCESSING_UPLOAD", "FAILED"]
    out = await publisher(await make_client(http, fake)).publish(video, caption="c")
    assert out.status == "FAILED" and out.error == "file_format_check_failed" and out.publish_id
    assert fake.count("/v2/post/publish/status/fetch/") == 3


async def test_poll_timeout_is_processing(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    fake.statuses = ["PROCESSING_UPLOAD"]
    pub = Publisher(await make_client(http, fake), MemoryPublisherState(), poll_interval_s=0.05, poll_timeout_s=0.3)
    out = await pub.publish(video, caption="c")
    assert out.status == "PROCESSING" and out.publish_id and out.error == "PROCESSING_UPLOAD"


async def test_spam_risk_fails_and_backs_off(video: Path, fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    fake.spam = True
    pub = publisher(await make_client(http, fake), max_backoff_s=900.0)
    out = await pub.publish(video, caption="c")
    assert out.status == "FAILED" and out.error.startswith("spam_risk_too_many_posts")
    until, _ = await pub.state.get_backoff()
    assert until >= time.time() + 890


async def test_diagnose(fake: FakeTikTok, http: httpx.AsyncClient) -> None:
    pub = publisher(await make_client(http, fake))
    await pub.state.set_sandbox(True)
    await pub.state.set_backoff(time.time() + 30, 2)
    report = await pub.diagnose()
    assert report["token"]["present"] and report["token"]["valid"] and report["token"]["refreshable"]
    assert 3500 < report["token"]["expires_in"] <= 3600
    assert report["creator_info"]["creator_username"] == "fake_creator"
    assert report["sandbox"] is True
    assert 25 < report["backoff"]["remaining_s"] <= 30 and report["backoff"]["failures"] == 2
    fake.valid_tokens.clear()
    fake.refresh_tokens.clear()
    broken = await pub.diagnose()  # revoked token, refresh rejected: the error is reported, not raised
    assert broken["creator_info"]["error"] == "invalid_grant"
