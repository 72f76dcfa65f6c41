"""Shared pytest fixtures for every service's tests (loaded with `-p creatormesh.common.testing`):
the embedded broker, a real Redis (the machine's, or a private one), unique names, channel cleanup, torch on
one thread."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from creatormesh.common.runtime.broker import EmbeddedBroker
from creatormesh.common.runtime.redis_server import EmbeddedRedis

#: The test PostgreSQL (the machine's; CI has it too).
POSTGRES = os.environ.get("CREATORMESH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_schema_url(prefix: str) -> Iterator[str]:
    """Yield a SQLAlchemy URL whose search_path is a fresh schema of the test PostgreSQL, dropped afterwards; skip the
    test when no PostgreSQL answers. Use from a fixture: ``yield from postgres_schema_url("ledger")``."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001 — any failure to reach it means: no PostgreSQL here
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap address of a fresh embedded broker with every topic created."""
    b = EmbeddedBroker()
    yield b.start()
    b.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The configured Redis if one answers, else a private redis-server."""
    from creatormesh.common.redis_pool import ping

    url = os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if asyncio.run(ping(url)):
        yield url
        return
    server = EmbeddedRedis()
    yield server.start()
    server.stop()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def close_channels() -> AsyncIterator[None]:
    from creatormesh.common import client

    yield
    await client.close_all()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch (MiniLM, the services' models) on one intra-op thread for a test module: much faster on a busy
    2-core machine, and results don't depend on the thread count; restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of a private s3rver (credentials S3RVER/S3RVER); skipped only when there is no node/npm."""
    from creatormesh.common.runtime.s3_server import EmbeddedS3, node_available

    if not node_available():
        pytest.skip("s3rver needs node and npm (neither node_modules/.bin/s3rver nor node+npm found)")
    server = EmbeddedS3()
    yield server.start()
    server.stop()
