"""The compiled path's Redis readers (ranking-redis-tool) read what the Python reference writes, against the real
Redis, and interpret it as the reference does: user features and history (FeatureStore, also after SCRIPT FLUSH),
stored live items and their change stream (LiveItems), the URL's user, password and database; an unreachable Redis
is a clear error."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import redis.asyncio as aioredis
from numpy.typing import NDArray

from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.features import FeatureStore, InteractionRecord, UserFeatures
from creatormesh.ranking.live_items import LiveItems, Stored, decode, encode
from creatormesh.ranking.recommender import ItemContent

T0 = 1_700_000_000.0


def run(redis_tool: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([str(redis_tool), *args], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def features_json(f: UserFeatures) -> dict[str, Any]:
    recent = [
        {"item_id": r.item_id, "type": r.type, "occurred_at": r.occurred_at, "watch_seconds": r.watch_seconds}
        for r in f.recent
    ]
    return {
        "user_id": f.user_id,
        "found": f.found,
        "total_interactions": f.total_interactions,
        "interests": f.interests,
        "recent": recent,
        "history": list(f.history),
    }


def stored_json(s: Stored) -> dict[str, Any]:
    c = s.meta.content
    return {
        "id": c.item_id,
        "genres": list(c.genres),
        "hashtags": list(c.hashtags),
        "text": c.text,
        "title": c.title,
        "creator_id": s.meta.creator_id,
        "model_version": s.model_version,
        "engagement_rate": c.engagement_rate,
        "quality": c.quality,
        "published_at": s.meta.published_at,
        "blocked": s.meta.blocked,
        "vector": [float(x) for x in s.vector],
    }


def by_id(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: str(i["id"]))


def meta(item_id: str, *genres: str, **more: Any) -> ItemMeta:
    return ItemMeta(ItemContent(item_id, genres, ("#tag",), f"about {item_id}", 0.5, 0.75, "a title"), **more)


def vector(seed: int, dim: int = 8) -> NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def interaction(user: str, item: str, kind: str, at: float, *genres: str, **more: Any) -> InteractionRecord:
    return InteractionRecord(user_id=user, item_id=item, type=kind, occurred_at=at, genres=genres, **more)


async def test_features_and_history_match_the_feature_store(
    redis_tool: Path, redis: Any, redis_url: str, prefix: str, unique: str
) -> None:
    writer = FeatureStore(redis, prefix=prefix)
    alice, bob, carol, ghost = f"alice-{unique}", f"bób ✓ {unique}", f"carol:{unique}/x", f"ghost-{unique}"
    dave = f"dave-{unique}"
    await writer.set_interests(alice, ["Drama", "Space Opera", "drama", " jazz "])
    records = [  # arrival order is not time order; three at T0 + 1
        interaction(alice, "m1", "view", T0 + 5, "Comedy", "Drama", watch_seconds=12.5, session_id="s1"),
        interaction(alice, "m2", "like", T0 + 1, "horror"),
        interaction(alice, "m3", "view", T0 + 1, "horror", "thriller", watch_seconds=3),
        interaction(alice, "m1", "like", T0 + 7, "comedy"),  # the same item again
        interaction(alice, "m4", "skip", T0 + 6, "comedy", "western", watch_seconds=1.25),
        interaction(alice, "m5", "view", T0 + 3, "western"),  # western's weight is 0: not learned
        interaction(alice, "m6", "share", T0 + 1, "thriller"),
        interaction(alice, "película-ñ", "view", T0 + 2, *(f"g{i:02}" for i in range(25))),  # >20 learned
        interaction(alice, "m8", "like", T0 + 4, "pop"),  # weight 2 like comedy, fewer interactions
        interaction(alice, "m9", "complete", T0 + 0.5, "ciencia ficción"),
        interaction(carol, "m1", "skip", T0, "comedy"),
        interaction(carol, "m2", "skip", T0, "drama"),
        *(interaction(dave, f"d{n % 17}", "view", T0 + n % 4, "rock") for n in range(40)),  # many equal times
        interaction(dave, "d1", "skip", T0 + 5, "western"),
        interaction(dave, "d2", "view", T0 + 5, "western"),  # weight 0: not learned
    ]
    for n, record in enumerate(records):
        assert await writer.record(f"{unique}-e{n}", record)
    await writer.set_interests(bob, ["Ópera", "rock"])
    users = [alice, bob, carol, ghost, alice, dave]

    for length in (1, 3, 30):  # the script reads max(length, 20) entries, then sorts by time
        reference = await FeatureStore(redis, prefix=prefix, history_length=length).features_many(users)
        args = ["features", "--redis", redis_url, "--prefix", prefix, "--history-length", str(length)]
        assert run(redis_tool, *args, *users) == [features_json(f) for f in reference]

    a, b, c, g, _, d = reference
    assert a.interests[:3] == ["drama", "space opera", "jazz"] and len(a.interests) == 3 + 20 - 1
    assert a.interests[3:8] == ["thriller", "horror", "ciencia ficción", "comedy", "pop"]  # by weight, then count
    assert "western" not in a.interests and a.interests[-1] == "g13"
    assert [r.item_id for r in a.recent[:3]] == ["m1", "m4", "m1"]
    assert [r.item_id for r in a.recent if r.occurred_at == T0 + 1] == ["m6", "m3", "m2"]  # newest arrival first
    assert a.history[-2:] == ("m8", "m1") and "m4" not in a.history
    assert b.found and b.total_interactions == 0 and b.interests == ["ópera", "rock"] and b.recent == []
    assert c.found and c.interests == [] and c.history == () and len(c.recent) == 2
    assert not g.found
    assert d.interests == ["rock"] and len({r.occurred_at for r in d.recent}) < len(d.recent) / 5


async def test_an_unknown_read_script_is_loaded(redis_tool: Path, redis: Any, redis_url: str, prefix: str) -> None:
    store = FeatureStore(redis, prefix=prefix, history_length=5)
    for n in range(7):
        await store.record(f"e{n}", interaction("u1", f"m{n % 4}", "view", T0 + n % 3, "comedy"))
    await redis.script_flush()
    args = ["features", "--redis", redis_url, "--prefix", prefix, "--history-length", "5", "u1", "u2"]
    got = run(redis_tool, *args)
    assert (await redis.script_exists(store._read_sha)) == [True]  # the tool loaded the very script FeatureStore calls
    assert got == [features_json(f) for f in await store.features_many(["u1", "u2"])]


async def test_live_items_match_load_all(redis_tool: Path, redis: Any, redis_url: str, prefix: str) -> None:
    args = ["live-items", "--redis", redis_url, "--prefix", prefix]
    assert run(redis_tool, *args) == [{"position": "0-0", "items": []}]
    live = LiveItems(redis, prefix=prefix)
    special = np.array([0.0, -0.0, 1e-40, -3.4e38, 1.0, 0.1], dtype=np.float32)
    items = [
        (meta("v1", "comedy", "drama", creator_id="c1", published_at=T0 + 0.25), vector(1)),
        (ItemMeta(ItemContent("película-ñ 🎬", ("ciencia ficción",), (), 'say "hi"\n'), "créateur"), special),
        (meta("blocked-1", "horror", creator_id="c2", published_at=1_600_000_000, blocked=True), vector(2)),
        (meta("no-vector"), np.zeros(0, dtype=np.float32)),
    ]
    await live.put_many(items, "model-a")
    await live.put_many([(meta(f"bulk-{i}", f"g{i % 7}", published_at=T0 + i), vector(i, 4)) for i in range(1500)], "b")
    await live.put(meta("v1", "comedy", creator_id="c1", published_at=T0 + 9), vector(3), "model-b")  # replaced
    old = {"id": "old", "genres": [], "hashtags": [], "text": "", "engagement_rate": None, "quality": 0.5,
           "creator_id": "", "published_at": None, "vector": ""}  # fmt: skip
    await redis.hset(live.hash_key, "old", json.dumps(old))  # written before title, blocked and model_version

    stored, position = await live.load_all()
    got = run(redis_tool, *args)
    assert len(got) == 1 and got[0]["position"] == position != "0-0"
    assert by_id(got[0]["items"]) == by_id([stored_json(s) for s in stored])
    assert len(stored) == 1505 and len({s.meta.item_id for s in stored}) == 1505
    assert next(i for i in got[0]["items"] if i["id"] == "película-ñ 🎬")["quality"] is None


async def test_follow_prints_each_applied_batch(redis_tool: Path, redis: Any, redis_url: str, prefix: str) -> None:
    live = LiveItems(redis, prefix=prefix)
    await live.put(meta("before"), vector(0), "v")
    command = [str(redis_tool), "live-items", "--redis", redis_url, "--prefix", prefix, "--follow", "3"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout = proc.stdout
    assert stdout is not None

    async def line() -> dict[str, Any]:
        text = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 10)
        assert text, "the tool ended early"
        return dict(json.loads(text))

    try:
        first = await line()
        assert [i["id"] for i in first["items"]] == ["before"]
        a, b = (meta("a", "comedy"), vector(1)), (meta("b", "drama", blocked=True), vector(2))
        await live.put_many([a, b], "v1")
        assert (await line())["items"] == [stored_json(decode(encode(m, v, "v1"))) for m, v in (a, b)]
        a2 = (meta("a", "horror", published_at=T0), vector(3))
        await live.put_many([a2, a2], "v2")  # one id twice in a batch: applied once
        assert (await line())["items"] == [stored_json(decode(encode(*a2, "v2")))]
        c = (ItemMeta(ItemContent("c ✓", ("música",))), vector(4))
        async with redis.pipeline(transaction=True) as pipe:  # one batch: a bad value, a deleted item, a good one
            pipe.hset(live.hash_key, "bad", "not json")
            pipe.xadd(live.log_key, {"id": "bad"})
            pipe.hdel(live.hash_key, "b")
            pipe.xadd(live.log_key, {"id": "b"})
            pipe.hset(live.hash_key, "c ✓", encode(*c, "v3"))
            pipe.xadd(live.log_key, {"id": "c ✓"})
            await pipe.execute()
        assert (await line())["items"] == [stored_json(decode(encode(*c, "v3")))]
        out, err = await asyncio.to_thread(proc.communicate, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == ""
    assert "skipped bad" in err


async def test_url_user_password_and_database(redis_tool: Path, redis_url: str, unique: str) -> None:
    url = urlsplit(redis_url)
    if url.username or url.password:
        pytest.skip("the test Redis has a password")
    prefix, db = f"test-{unique}", 5
    other = aioredis.Redis.from_url(f"redis://{url.netloc}/{db}")
    try:
        await LiveItems(other, prefix=prefix).put(meta("x"), vector(0), "v")
        args = ["live-items", "--prefix", prefix, "--redis"]
        # AUTH user password, SELECT
        (got,) = run(redis_tool, *args, f"redis://default:any%20password@{url.netloc}/{db}")
        assert [i["id"] for i in got["items"]] == ["x"]
        assert run(redis_tool, *args, f"redis://{url.netloc}")[0]["items"] == []  # database 0
        done = subprocess.run(
            [str(redis_tool), *args, f"redis://:secret@{url.netloc}/{db}"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 1 and "AUTH" in done.stderr  # no password is set for the default user
    finally:
        await other.delete(f"{prefix}:items", f"{prefix}:items:log")
        await other.aclose()


def test_an_unreachable_redis_is_a_clear_error(redis_tool: Path) -> None:
    url = "redis://127.0.0.1:1/0"
    for command in (["features", "--redis", url, "u1"], ["live-items", "--redis", url, "--follow", "1"]):
        done = subprocess.run([str(redis_tool), *command], capture_output=True, text=True, check=False, timeout=30)
        assert done.returncode == 1 and done.stdout == ""
        assert "cannot connect to Redis at 127.0.0.1:1" in done.stderr
    for bad in ([], ["features", "u1"], ["live-items", "--redis"], ["serve", "--redis", url]):
        usage = subprocess.run([str(redis_tool), *bad], capture_output=True, text=True, check=False)
        assert usage.returncode == 2 and "usage: ranking-redis-tool" in usage.stderr
