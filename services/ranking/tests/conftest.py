"""Fixtures shared by the ranking tests: one small trained checkpoint per session, torch on one thread, a Redis
client with a key prefix of the test's own, the compiled serving path's binaries."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from creatormesh.ranking import compiled
from creatormesh.ranking.data import DEFAULT_DATA_DIR
from creatormesh.ranking.train import TrainConfig, train

#: the first 40 MovieLens users, small models: seconds on one thread
SMALL = TrainConfig(max_users=40, epochs=10, dim=16, batch_size=128, progress=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every test module runs torch on one thread (the kit's fixture)."""


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models trained on the SMALL slice, shared by every ranking test module."""
    path = tmp_path_factory.mktemp("ranking-small-model")
    train(DEFAULT_DATA_DIR, path, SMALL)
    return path


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Any, unique: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys (event markers live 7 days) are deleted afterwards."""
    yield f"test-{unique}"
    keys = [k async for k in redis.scan_iter(match=f"test-{unique}:*")]
    if keys:
        await redis.delete(*keys)


def compiled_binary(target: str | None = None) -> Path:
    """The compiled path's ``target`` (default ``ranking-serving``), built; the test skips without the C++
    toolchain, and fails instead when ``CREATORMESH_REQUIRE_CPP`` is set (CI as root)."""
    if gaps := compiled.missing():
        reason = f"C++ toolchain missing ({', '.join(gaps)}): make cpp-toolchain"
        if os.environ.get("CREATORMESH_REQUIRE_CPP"):
            pytest.fail(reason)
        pytest.skip(reason)
    return compiled.build(target=target)


@pytest.fixture(scope="module")
def binary() -> Path:
    """``ranking-serving``, built."""
    return compiled_binary()


@pytest.fixture(scope="module")
def redis_tool() -> Path:
    """``ranking-redis-tool`` (the Redis readers on their own), built."""
    return compiled_binary("ranking-redis-tool")
