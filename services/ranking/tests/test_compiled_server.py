"""The compiled RankingService (``ranking-serving serve``) gives the pages the Python service gives: both run
side by side over the same checkpoint and Redis, and every RankForYou answer is compared field by field. Calls
the compiled server does not rank itself are forwarded to the Python service; bad input gets the same
INVALID_ARGUMENT; live items reach it through the Redis change stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from creatormesh.common import client
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.events.v1 import content_pb2, interactions_pb2
from creatormesh.ranking.app import RankingService
from creatormesh.ranking.settings import RankingSettings
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["RankingService"]
pytestmark = pytest.mark.usefixtures("close_channels")


class Pair(SimpleNamespace):
    python: Any  # RankingServiceStub of the Python service
    compiled: Any  # RankingServiceStub of ranking-serving
    service: RankingService
    process: subprocess.Popen[str]
    channel: Any
    serving_line: str  # what ranking-serving logged when it began SERVING


def scored_event(item_id: str, **fields: Any) -> Any:
    """What the bus hands on_content_scored (the handler reads payload and event_id only)."""
    return SimpleNamespace(payload=content_pb2.ContentScored(content_id=item_id, **fields), event_id=uuid.uuid4().hex)


async def record(service: RankingService, user: str, items: list[str], kind: int = 0) -> None:
    for i, item in enumerate(items):
        payload = interactions_pb2.Interaction(
            user_id=user, item_id=item, type=kind or interactions_pb2.INTERACTION_TYPE_COMPLETE, watch_seconds=20.0,
            watch_fraction=1.0, occurred_at=Timestamp(seconds=int(time.time()) - 1000 + i), session_id=f"{user}-s",
        )  # fmt: skip
        await service.on_interaction(SimpleNamespace(payload=payload, event_id=uuid.uuid4().hex))


def start_compiled(binary: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [str(binary), "serve"], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on port" in line, line + (process.stderr.read() if process.stderr else "")
    return process, int(line.split("port ")[1].split()[0])


async def wait_serving(channel: Any, timeout: float = 60) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name))
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return
        assert time.monotonic() < deadline, "ranking-serving never reported SERVING"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture
async def pair(
    request: pytest.FixtureRequest, binary: Path, trained_model: Path, redis_url: str, unique: str
) -> AsyncIterator[Pair]:
    """Both servers; ``request.param`` (indirect) may give more ranking settings for both."""
    extra: dict[str, Any] = getattr(request, "param", {})
    prefix = f"test-compiled-{unique}"
    kit = KitSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap="", redis_url=redis_url)
    settings = RankingSettings(model_path=str(trained_model), redis_prefix=prefix, warm_after_interactions=5, **extra)
    service = RankingService(build_runtime(kit, "ranking"), settings)
    server = Server(service)
    port = await server.start()
    # a live item stored before the compiled server starts: it loads it from Redis
    await service.on_content_scored(
        scored_event("early-clip", creator_id="c-early", v=0.97, title="early bird", genres=["Comedy"],
                     hashtags=["#Morning"], published_at=Timestamp(seconds=int(time.time()) - 7200))
    )  # fmt: skip
    env = {
        "CREATORMESH_RANKING_MODEL_PATH": str(trained_model), "CREATORMESH_REDIS_URL": redis_url,
        "CREATORMESH_RANKING_REDIS_PREFIX": prefix, "CREATORMESH_RANKING_WARM_AFTER_INTERACTIONS": "5",
        "CREATORMESH_RANKING_BACKEND": f"127.0.0.1:{port}", "CREATORMESH_GRPC_PORT": "0",
        **{f"CREATORMESH_RANKING_{k.upper()}": str(v) for k, v in extra.items()},
    }  # fmt: skip
    process, compiled_port = start_compiled(binary, env)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{compiled_port}")
    try:
        await wait_serving(channel)
        assert process.stderr is not None
        line = await asyncio.to_thread(process.stderr.readline)
        yield Pair(
            serving_line=line,
            python=ranking_pb2_grpc.RankingServiceStub(client.channel(f"127.0.0.1:{port}", SERVICE, deadline=30)),
            compiled=ranking_pb2_grpc.RankingServiceStub(channel), service=service, process=process, channel=channel,
        )  # fmt: skip
    finally:
        await channel.close()
        if process.poll() is None:
            process.kill()
        process.wait()
        await server.stop()
        keys = [k async for k in service.features.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await service.features.redis.delete(*keys)


def assert_same_page(got: Any, want: Any, what: str) -> None:
    assert [i.item_id for i in got.items] == [i.item_id for i in want.items], what
    for g, w in zip(got.items, want.items, strict=True):
        assert (g.rank, g.creator_id, list(g.genres)) == (w.rank, w.creator_id, list(w.genres)), what
        assert g.score == pytest.approx(w.score, abs=1e-6), (what, g.item_id)
        for part in ("two_tower", "sequence", "quality", "freshness", "interest_match", "blend_weight"):
            assert getattr(g.breakdown, part) == pytest.approx(getattr(w.breakdown, part), abs=1e-6), (what, part)
        assert g.breakdown.diversity_penalty == pytest.approx(w.breakdown.diversity_penalty, abs=1e-6), what
    for field in ("user_state", "experiment", "arm", "arm_source", "model_version", "candidates_considered",
                  "candidate_source"):  # fmt: skip
        assert getattr(got, field) == getattr(want, field), (what, field)
    for field in ("blend_weight", "intra_list_diversity", "coverage"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), abs=1e-9), (what, field)


async def both(p: Pair, request: Any, metadata: Any = ()) -> tuple[Any, Any]:
    return await p.compiled.RankForYou(request, metadata=metadata), await p.python.RankForYou(
        request, metadata=metadata
    )


async def test_pages_equal_the_python_services(pair: Pair) -> None:
    p = pair
    ids = p.service.ranker.recommender.item_ids
    await p.service.on_content_scored(
        scored_event("late-clip", creator_id="c-late", v=0.91, title="late night", genres=["drama", "comedy"],
                     published_at=Timestamp(seconds=int(time.time()) - 60))
    )  # fmt: skip
    await p.service.on_content_scored(scored_event("hidden-clip", v=0.99, genres=["comedy"], safety={"blocked": True}))
    warm, tepid, cold = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("warm", "tepid", "cold"))
    await record(p.service, warm, list(ids[:12]))
    await record(p.service, warm, [ids[3]], interactions_pb2.INTERACTION_TYPE_SKIP)
    await record(p.service, tepid, [*ids[20:22], "early-clip"])
    await p.python.SetInterests(pb.SetInterestsRequest(user_id=cold, interests=["comedy", "Drama"]))

    async def arrived() -> bool:  # the live item reached the compiled server through the change stream
        request = pb.RankForYouRequest(user_id=cold, limit=200)
        page = await p.compiled.RankForYou(request, metadata=(("x-use-overdrive", "0"),))
        return "late-clip" in [i.item_id for i in page.items]

    deadline = time.monotonic() + 10
    while not await arrived():
        assert time.monotonic() < deadline, "the live item never reached ranking-serving"
        await asyncio.sleep(0.05)
    assert "index flat" in p.serving_line, p.serving_line
    on, off = (("x-use-overdrive", "1"),), (("x-use-overdrive", "0"),)
    cases = [
        ("warm", pb.RankForYouRequest(user_id=warm, limit=20), on),
        ("warm, control arm", pb.RankForYouRequest(user_id=warm, limit=20), off),
        ("warm, no diversity", pb.RankForYouRequest(user_id=warm, limit=30, diversity=0.0), on),
        ("warm, full diversity", pb.RankForYouRequest(user_id=warm, limit=10, diversity=1.0), on),
        ("warm, excluding", pb.RankForYouRequest(user_id=warm, limit=15, exclude_item_ids=list(ids[12:40])), on),
        ("tepid", pb.RankForYouRequest(user_id=tepid, limit=25, diversity=0.5), on),
        ("cold with interests", pb.RankForYouRequest(user_id=cold, limit=50), on),
        ("cold, control", pb.RankForYouRequest(user_id=cold, limit=5, experiment="other"), off),
        ("unknown user, bucketed", pb.RankForYouRequest(user_id="nobody-at-all", limit=8, experiment="exp-9"), ()),
        ("a trained user, bucketed", pb.RankForYouRequest(user_id=p.service.ranker.recommender.space.users[0]), ()),
        ("unicode id", pb.RankForYouRequest(user_id="zoë-🎬", limit=3), on),
    ]
    for what, request, metadata in cases:
        got, want = await both(p, request, metadata)
        assert want.items or what.startswith("cold, control"), what
        assert_same_page(got, want, what)
    pages = [await p.compiled.RankForYou(pb.RankForYouRequest(user_id=cold, limit=300), metadata=on)]
    assert "hidden-clip" not in [i.item_id for page in pages for i in page.items]  # brand safety


@pytest.mark.parametrize("pair", [{"exact_index_max_items": 0, "hnsw_ef_search": 1024}], indirect=True)
async def test_hnsw_pages_equal_the_python_services(pair: Pair) -> None:
    """Both servers on an HNSW index (built by different FAISS releases, so not the same graph): searched this
    wide over the small catalogue, both find the exact neighbours, so the pages are the same."""
    p = pair
    ids = p.service.ranker.recommender.item_ids
    assert p.service.ranker.index.kind == "hnsw" and "index hnsw" in p.serving_line, p.serving_line
    users = [f"hnsw-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    for i, user in enumerate(users):
        await record(p.service, user, list(ids[i * 7 : i * 7 + 3 + 2 * i]))
    for user in users:
        got, want = await both(p, pb.RankForYouRequest(user_id=user, limit=20), (("x-use-overdrive", "1"),))
        assert want.items
        assert_same_page(got, want, user)


async def test_calls_it_does_not_rank_are_forwarded(pair: Pair) -> None:
    p = pair
    user = f"fwd-{uuid.uuid4().hex[:6]}"
    stored = await p.compiled.SetInterests(pb.SetInterestsRequest(user_id=user, interests=["Comedy", "#music"]))
    assert list(stored.interests) == ["comedy", "music"]
    assert list((await p.python.GetInterests(pb.GetInterestsRequest(user_id=user))).interests) == ["comedy", "music"]
    await record(p.service, user, list(p.service.ranker.recommender.item_ids[:3]))
    for method, request in (
        ("GetFeatures", pb.GetFeaturesRequest(user_id=user)), ("GetInsights", pb.GetInsightsRequest(user_id=user)),
        ("GetInterests", pb.GetInterestsRequest(user_id=user)),
    ):  # fmt: skip
        assert await getattr(p.compiled, method)(request) == await getattr(p.python, method)(request), method
    candidates = [
        pb.CandidateItem(id=f"own-{i}", content=f"clip {i}", genres=[g], quality_score=0.1 + i / 20, creator_id="c")
        for i, g in enumerate(["comedy", "drama", "music"] * 4)
    ]  # fmt: skip
    request = pb.RankForYouRequest(user_id=user, candidate_items=candidates, limit=6)
    got, want = await both(p, request, (("x-use-overdrive", "1"),))
    assert got.candidate_source == pb.CANDIDATE_SOURCE_REQUEST
    assert_same_page(got, want, "own candidates")
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the forwarded call's own validation
        await p.compiled.RankForYou(pb.RankForYouRequest(user_id=user, candidate_items=[pb.CandidateItem(id="")]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "candidate_items[0].id: is required"


async def test_bad_input_gets_the_same_invalid_argument(pair: Pair) -> None:
    p = pair
    bad = [
        (pb.RankForYouRequest(user_id=""), ()),
        (pb.RankForYouRequest(user_id="   "), ()),
        (pb.RankForYouRequest(user_id="é" * 257), ()),
        (pb.RankForYouRequest(user_id="u", limit=501), ()),
        (pb.RankForYouRequest(user_id="u", limit=-1), ()),
        (pb.RankForYouRequest(user_id="u", diversity=1.5), ()),
        (pb.RankForYouRequest(user_id="u", diversity=float("nan")), ()),
        (pb.RankForYouRequest(user_id="u", diversity=-0.25), ()),
        (pb.RankForYouRequest(user_id="u", experiment="x" * 129), ()),
        (pb.RankForYouRequest(user_id="u", exclude_item_ids=["i"] * 5001), ()),
        (pb.RankForYouRequest(user_id="u"), (("x-use-overdrive", "maybe"),)),
    ]
    for request, metadata in bad:
        errors = []
        for stub in (p.compiled, p.python):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.RankForYou(request, metadata=metadata)
            errors.append((caught.value.code(), caught.value.details()))
        assert errors[0] == errors[1], errors
        assert errors[0][0] == grpc.StatusCode.INVALID_ARGUMENT
    page = await p.compiled.RankForYou(pb.RankForYouRequest(user_id="é" * 256, limit=1))
    assert len(page.items) == 1  # 256 characters (512 bytes) is allowed


async def test_sigterm_drains_and_exits(pair: Pair) -> None:
    p = pair
    assert p.process.poll() is None
    p.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.process.wait, 30) == 0


@pytest.fixture
def no_redis_env(trained_model: Path) -> Iterator[dict[str, str]]:
    yield {
        "CREATORMESH_RANKING_MODEL_PATH": str(trained_model), "CREATORMESH_REDIS_URL": "redis://127.0.0.1:1/0",
        "CREATORMESH_GRPC_PORT": "0",
    }  # fmt: skip


def test_a_bad_setting_is_a_clear_error(binary: Path, trained_model: Path) -> None:
    env = {
        **os.environ,
        "CREATORMESH_RANKING_MODEL_PATH": str(trained_model),
        "CREATORMESH_RANKING_DEFAULT_LIMIT": "many",
    }
    done = subprocess.run([str(binary), "serve"], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert "CREATORMESH_RANKING_DEFAULT_LIMIT must be a number, got 'many'" in done.stderr


def test_an_unreachable_redis_is_a_clear_error(binary: Path, no_redis_env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(binary), "serve"], env={**os.environ, **no_redis_env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "127.0.0.1:1" in done.stderr
