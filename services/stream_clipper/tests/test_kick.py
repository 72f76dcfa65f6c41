"""KickClient and Monitor against a local fake of Kick's token, channels and playback endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from creatormesh.stream_clipper.kick import ChannelStatus, KickClient, KickError
from creatormesh.stream_clipper.monitor import Monitor
from creatormesh.stream_clipper.tokens import MemoryTokenStore, RedisTokenStore, TokenStore

from .kick_fake import CLIENT_ID, CLIENT_SECRET, FakeKickServer


@pytest.fixture
def fake() -> Iterator[FakeKickServer]:
    with FakeKickServer() as server:
        for slug in ("alpha", "beta"):
            server.kick.add_channel(slug)
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def kick_client(
    fake: FakeKickServer, http: httpx.AsyncClient, store: TokenStore | None = None, margin: float = 300.0
) -> KickClient:
    return KickClient(
        http,
        store if store is not None else MemoryTokenStore(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        auth_url=fake.auth_url,
        api_url=fake.url,
        playback_api=fake.playback_api,
        refresh_margin_s=margin,
    )


class Events:
    """Records monitor callbacks."""

    def __init__(self) -> None:
        self.live: list[ChannelStatus] = []
        self.offline: list[ChannelStatus] = []
        self.errors: list[tuple[float, str, str]] = []

    async def on_live(self, status: ChannelStatus) -> None:
        self.live.append(status)

    async def on_offline(self, status: ChannelStatus) -> None:
        self.offline.append(status)

    async def on_error(self, slug: str, message: str) -> None:
        self.errors.append((time.monotonic(), slug, message))


def monitor(client: KickClient, events: Events, **kw: float) -> Monitor:
    return Monitor(client, on_live=events.on_live, on_offline=events.on_offline, on_error=events.on_error, **kw)


async def test_token_fetched_once_and_reused(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    client = kick_client(fake, http)
    tokens = await asyncio.gather(*(client.token() for _ in range(8)))
    for _ in range(3):
        statuses = await client.channels(["alpha", "beta"])
        assert set(statuses) == {"alpha", "beta"}
    assert len(set(tokens)) == 1
    assert fake.kick.token_requests == 1
    assert len(fake.kick.channel_requests) == 3


async def test_token_refreshed_before_expiry(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    fake.kick.expires_in = 3
    client = kick_client(fake, http, margin=2.0)
    first = await client.token()
    assert await client.token() == first
    await asyncio.sleep(1.2)  # now within the margin of expiry
    assert await client.token() != first
    assert fake.kick.token_requests == 2


async def test_token_persisted_in_redis(
    fake: FakeKickServer, http: httpx.AsyncClient, redis_url: str, unique: str
) -> None:
    store = RedisTokenStore(redis_url, prefix=f"test:{unique}:token:")
    try:
        await kick_client(fake, http, store).channels(["alpha"])
        saved = await store.load("kick:app")
        assert saved is not None and saved.access_token == "tok-1" and saved.fresh(300)
        # a restart: new client, new store object, same Redis -> no token request
        restarted = kick_client(fake, http, RedisTokenStore(redis_url, prefix=f"test:{unique}:token:"))
        assert (await restarted.channels(["alpha", "beta"]))["beta"].slug == "beta"
        assert fake.kick.token_requests == 1
    finally:
        await store.delete("kick:app")


async def test_rejected_token_reauthenticates_once(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    slugs = [f"ch-{i:02d}" for i in range(60)]
    for slug in slugs:
        fake.kick.add_channel(slug)
    client = kick_client(fake, http)
    await client.channels(slugs)
    fake.kick.expire_tokens()
    statuses = await client.channels(slugs)  # both batches get 401 concurrently
    assert len(statuses) == 60
    assert fake.kick.unauthorized == 2
    assert fake.kick.token_requests == 2


async def test_sixty_channels_in_two_batches(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    slugs = [f"ch-{i:02d}" for i in range(60)]
    for slug in slugs:
        fake.kick.add_channel(slug)
    statuses = await kick_client(fake, http).channels([*slugs, "missing"])
    assert sorted(statuses) == slugs
    assert sorted(len(batch) for batch in fake.kick.channel_requests) == [11, 50]
    assert all(not s.is_live and s.stream_id == "" and s.started_at is None for s in statuses.values())


async def test_errors_and_playback_url(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    client = kick_client(fake, http)
    await client.token()
    fake.kick.fail(1, 429)
    with pytest.raises(KickError) as info:
        await client.channels(["alpha"])
    assert info.value.status == 429 and info.value.retry_after == 0.0
    with pytest.raises(KickError) as info:
        await client.playback_url("alpha")
    assert info.value.status == 404
    fake.kick.go_live("alpha")
    assert await client.playback_url("alpha") == f"{fake.url}/hls/alpha/index.m3u8"


async def test_transitions_fire_once(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    events = Events()
    mon = monitor(kick_client(fake, http), events)
    mon.add("Alpha")
    mon.add("beta")
    assert mon.slugs == {"alpha", "beta"}
    await mon.poll_once()
    assert events.live == [] and events.offline == []
    fake.kick.go_live("alpha", viewers=7)
    for _ in range(3):
        statuses = await mon.poll_once()
    assert [s.slug for s in events.live] == ["alpha"]
    live = events.live[0]
    assert live.is_live and live.viewer_count == 7 and live.title == "alpha stream" and live.started_at is not None
    assert live.stream_id.startswith("kick-alpha-") and statuses["alpha"].stream_id == live.stream_id
    fake.kick.end_stream("alpha")
    await mon.poll_once()
    await mon.poll_once()
    assert [s.slug for s in events.offline] == ["alpha"] and not events.offline[0].is_live
    # a channel that is already live when first seen counts as going live
    fake.kick.go_live("beta")
    fresh = Events()
    other = monitor(kick_client(fake, http), fresh)
    other.add("beta")
    await other.poll_once()
    await other.poll_once()
    assert [s.slug for s in fresh.live] == ["beta"]
    assert events.errors == [] and fresh.errors == []


async def test_errors_back_off_then_recover(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    events = Events()
    client = kick_client(fake, http)
    await client.token()
    mon = monitor(client, events, interval_s=0.05, max_backoff_s=0.4, jitter=0.2)
    mon.add("alpha")
    fake.kick.go_live("alpha")
    fake.kick.fail(4, 500)
    stop = asyncio.Event()
    task = asyncio.create_task(mon.run(stop))
    try:
        async with asyncio.timeout(10):
            while not events.live:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert [(slug, "HTTP 500" in msg) for _, slug, msg in events.errors] == [("*", True)] * 4
    gaps = [b[0] - a[0] for a, b in zip(events.errors, events.errors[1:], strict=False)]
    # backoff after n failures in a row: 0.05 * 2**n capped at 0.4, +-20 % jitter -> ~0.1, ~0.2, ~0.4
    assert 0.08 < gaps[0] < gaps[1] < gaps[2] < 0.9
    assert gaps[1] > 0.16 and gaps[2] > 0.32
    assert mon.failures == 0 and [s.slug for s in events.live] == ["alpha"]


async def test_backoff_delays_grow_and_cap(fake: FakeKickServer, http: httpx.AsyncClient) -> None:
    mon = monitor(kick_client(fake, http), Events(), interval_s=1.0, max_backoff_s=10.0, jitter=0.1)
    delays = []
    for failures in range(7):
        mon.failures = failures
        delays.append(mon.next_delay())
    for got, base in zip(delays, [1, 2, 4, 8, 10, 10, 10], strict=True):
        assert base * 0.9 <= got <= base * 1.1
    mon.failures = 1
    assert mon.next_delay(KickError(429, "slow down", retry_after=6.0)) >= 6.0 * 0.9
