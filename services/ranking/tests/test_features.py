"""FeatureStore against the real Redis: records change features, event ids are idempotent, TTLs are set,
refreshed and honoured, history is trimmed newest first, interests round-trip, drift shows a genre shift,
concurrent records are all counted; the live-item change stream survives an undecodable item."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.features import FeatureStore, InteractionRecord, jensen_shannon
from creatormesh.ranking.live_items import LiveItems, Stored
from creatormesh.ranking.recommender import ItemContent


@pytest.fixture
def store(redis: Any, prefix: str) -> FeatureStore:
    return FeatureStore(redis, prefix=prefix, history_length=10, recent_window=5)


def interaction(user: str, item: str, kind: str = "view", at: float = 0.0, **more: Any) -> InteractionRecord:
    return InteractionRecord(user_id=user, item_id=item, type=kind, occurred_at=at or time.time(), **more)


async def user_keys(redis: Any, store: FeatureStore, user: str) -> list[bytes]:
    return sorted([k async for k in redis.scan_iter(match=f"{store.prefix}:user:{{{user}}}:*")])


async def test_record_changes_features(store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    before = await store.features(user)
    assert not before.found and before.total_interactions == 0 and before.recent == [] and before.interests == []
    assert before.updated_at is None and before.ttl_seconds == 0 and before.history == ()
    t0 = 1_700_000_000.0
    records = [
        interaction(user, "m1", "view", t0, genres=("Comedy", "drama"), session_id="s1", watch_seconds=30),
        interaction(user, "m1", "like", t0 + 1, genres=("comedy", "drama"), session_id="s1", watch_fraction=0.8),
        interaction(user, "m2", "skip", t0 + 2, genres=("horror",), session_id="s2", watch_seconds=2),
        interaction(user, "m3", "complete", t0 + 3, genres=("comedy",), session_id="s2", watch_seconds=40,
                    creator_id="c9", watch_fraction=1.0),
    ]  # fmt: skip
    for n, record in enumerate(records):
        assert await store.record(f"{unique}-e{n}", record)
    after = await store.features(user)
    assert after.found and after.total_interactions == 4
    assert [r.item_id for r in after.recent] == ["m3", "m2", "m1", "m1"]  # newest first
    assert after.recent[0].type == "complete" and after.recent[0].watch_seconds == 40
    assert after.history == ("m1", "m3")  # oldest first, skip left out, each item once
    assert after.avg_session_duration == pytest.approx((30 + 42) / 2)
    assert after.interests == ["comedy", "drama"]  # horror was skipped: negative weight
    assert after.updated_at is not None and after.updated_at > time.time() - 60
    insights = await store.insights(user)
    assert insights.counts == {"view": 1, "like": 1, "skip": 1, "complete": 1}
    assert insights.top_creators == ["c9"]
    assert insights.avg_watch_fraction == pytest.approx(0.9)
    assert [(w.interest, w.interactions) for w in insights.top_interests] == [("comedy", 3), ("drama", 2)]


async def test_duplicate_event_is_ignored(store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    record = interaction(user, "m1", "like", genres=("comedy",))
    assert await store.record("same-event", record)
    assert not await store.record("same-event", record)
    assert not await store.record("same-event", interaction(user, "m2", "share"))
    features = await store.features(user)
    assert features.total_interactions == 1 and len(features.recent) == 1
    assert (await store.interests(user)).learned[0].interactions == 1


async def test_ttl_is_set_and_refreshed(redis: Any, store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    await store.record("e1", interaction(user, "m1", genres=("comedy",), creator_id="c", session_id="s"))
    keys = await user_keys(redis, store, user)
    assert len(keys) == 6  # meta, history, genres, creators, sessions, one event marker
    for key in keys:
        ttl = await redis.ttl(key)
        assert (ttl >= 7 * 24 * 3600 - 5) if b":event:" in key else (3600 - 5 <= ttl <= 3600)
    meta = f"{store.prefix}:user:{{{user}}}:meta"
    await redis.expire(meta, 100)
    assert (await store.features(user)).ttl_seconds <= 100
    await store.record("e2", interaction(user, "m2"))
    assert 3600 - 5 <= await redis.ttl(meta) <= 3600
    assert 3600 - 5 <= (await store.features(user)).ttl_seconds <= 3600
    await redis.expire(meta, 100)
    await store.set_interests(user, ["music"])  # also refreshes
    assert 3600 - 5 <= await redis.ttl(meta) <= 3600


async def test_features_expire(redis: Any, prefix: str, unique: str) -> None:
    store = FeatureStore(redis, prefix=prefix, ttl_seconds=1)
    user = f"u-{unique}"
    await store.record("e1", interaction(user, "m1", genres=("comedy",)))
    await store.set_interests(user, ["music"])
    assert (await store.features(user)).found
    await asyncio.sleep(1.5)
    gone = await store.features(user)
    assert not gone.found and gone.total_interactions == 0 and gone.interests == [] and gone.recent == []
    assert [k for k in await user_keys(redis, store, user) if b":event:" not in k] == []
    assert not await store.record("e1", interaction(user, "m1"))  # the event id outlives the features


async def test_history_is_trimmed_newest_first(store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    for n in range(25):
        await store.record(f"e{n}", interaction(user, f"m{n}", at=1_700_000_000.0 + n))
    features = await store.features(user)
    assert features.total_interactions == 25
    assert [r.item_id for r in features.recent] == [f"m{n}" for n in range(24, 14, -1)]
    assert features.history == tuple(f"m{n}" for n in range(15, 25))


async def test_interests_set_and_get(store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    empty = await store.interests(user)
    assert empty.declared == [] and empty.learned == [] and empty.updated_at is None
    stored = await store.set_interests(user, ["Gaming", " music ", "gaming", "", "Tech"])
    assert stored.declared == ["gaming", "music", "tech"] and stored.updated_at is not None
    assert (await store.interests(user)).declared == ["gaming", "music", "tech"]
    features = await store.features(user)
    assert features.found and features.total_interactions == 0 and features.interests == ["gaming", "music", "tech"]
    for n in range(3):
        await store.record(f"e{n}", interaction(user, f"m{n}", "like", genres=("cooking", "music")))
    assert (await store.features(user)).interests == ["gaming", "music", "tech", "cooking"]
    learned = (await store.interests(user)).learned
    assert {w.interest for w in learned} == {"cooking", "music"} and all(w.weight == 6.0 for w in learned)
    replaced = await store.set_interests(user, ["travel"])
    assert replaced.declared == ["travel"]


async def test_drift_after_a_genre_shift(redis: Any, prefix: str, unique: str) -> None:
    store = FeatureStore(redis, prefix=prefix)  # recent window 20 of a 50-long history
    steady, shifting = f"steady-{unique}", f"shift-{unique}"
    genres = ("comedy", "drama", "action")
    for n in range(60):
        at = 1_700_000_000.0 + n
        await store.record(f"s{n}", interaction(steady, f"m{n}", at=at, genres=(genres[n % 3],)))
        genre = "comedy" if n < 40 else "horror"
        await store.record(f"h{n}", interaction(shifting, f"m{n}", at=at, genres=(genre,)))
    calm = await store.insights(steady)
    assert calm.drift_score < 0.01 and calm.rising == [] and calm.fading == []
    assert calm.recent_interactions == 20
    moved = await store.insights(shifting)
    assert moved.drift_score == pytest.approx(0.459, abs=0.01)  # recent all horror vs 2/3 comedy, 1/3 horror
    assert moved.rising == ["horror"] and moved.fading == ["comedy"]
    unknown = await store.insights(f"nobody-{unique}")
    assert unknown.total_interactions == 0 and unknown.drift_score == 0.0 and unknown.counts == {}


def test_jensen_shannon_bounds() -> None:
    assert jensen_shannon({"a": 1.0}, {"a": 1.0}) == 0.0
    assert jensen_shannon({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
    assert 0.0 < jensen_shannon({"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}) < 1.0


async def test_concurrent_records_are_all_counted(store: FeatureStore, unique: str) -> None:
    user = f"u-{unique}"
    records = [
        store.record(f"c{n}", interaction(user, f"m{n}", "like", genres=("comedy",), session_id="s", watch_seconds=1))
        for n in range(50)
    ]
    assert all(await asyncio.gather(*records))
    features = await store.features(user)
    assert features.total_interactions == 50 and len(features.recent) == 10
    assert features.avg_session_duration == pytest.approx(50.0)
    learned = (await store.interests(user)).learned
    assert learned[0].interactions == 50 and learned[0].weight == pytest.approx(100.0)


async def test_rejects_bad_records(store: FeatureStore) -> None:
    with pytest.raises(ValueError, match="unknown interaction type"):
        await store.record("e", interaction("u", "m", "teleport"))
    with pytest.raises(ValueError, match="required"):
        await store.record("", interaction("u", "m"))
    with pytest.raises(ValueError, match="finite"):
        await store.record("e", interaction("u", "m", watch_seconds=float("inf")))


async def test_features_of_many_users_in_one_read_match_one_by_one(store: FeatureStore, unique: str) -> None:
    users = [f"{unique}-many-{i}" for i in range(4)]
    for i, u in enumerate(users[:3]):
        for k in range(i + 1):
            await store.record(f"{u}-{k}", InteractionRecord(u, f"item-{k}", "like", 1000.0 + k, genres=("Comedy",)))
    await store.set_interests(users[1], ["music"])
    many = await store.features_many(users)
    assert many == [await store.features(u) for u in users]
    assert [f.total_interactions for f in many] == [1, 2, 3, 0]
    assert many[1].interests == ["music", "comedy"] and not many[3].found


async def test_reads_survive_redis_forgetting_the_read_script(redis: Any, store: FeatureStore, unique: str) -> None:
    user = f"{unique}-noscript"
    await store.record(f"{user}-1", InteractionRecord(user, "item-1", "like", 1000.0))
    await redis.script_flush()  # what a Redis restart does: the next read finds no script by its hash
    assert (await store.features(user)).total_interactions == 1
    assert (await store.features(user)).total_interactions == 1


async def test_the_live_item_stream_skips_an_undecodable_item_and_goes_on(redis: Any, prefix: str) -> None:
    live = LiveItems(redis, prefix=prefix)
    _, position = await live.load_all()
    got: list[Stored] = []
    stop = asyncio.Event()
    follower = asyncio.create_task(live.follow(position, got.extend, stop))
    await redis.hset(live.hash_key, "broken", "{not json")
    await redis.xadd(live.log_key, {"id": "broken"})
    await redis.xadd(live.log_key, {"no-id-field": "x"})
    await live.put(ItemMeta(ItemContent("good", genres=("comedy",))), np.ones(4, dtype=np.float32), "v1")
    deadline = time.monotonic() + 10
    while not got:
        assert time.monotonic() < deadline, "the stream stopped at the undecodable item"
        await asyncio.sleep(0.05)
    stop.set()
    await follower
    assert [s.meta.item_id for s in got] == ["good"]
