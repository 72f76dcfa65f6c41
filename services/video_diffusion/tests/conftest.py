"""Fixtures for the video_diffusion tests: tiny random pipelines built once per session and saved as normal local
model directories (the service loads them exactly as it loads the real Wan2.1/CogVideoX weights)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from creatormesh.common import client
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.video_diffusion.app import VideoDiffusionService
from creatormesh.video_diffusion.builder import build_tiny
from creatormesh.video_diffusion.engine import Engine
from creatormesh.video_diffusion.settings import VideoDiffusionSettings
from creatormesh.video_diffusion.v1 import video_diffusion_pb2_grpc

from .helpers import SERVICE, Start


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread: None) -> Iterator[None]:
    """torch on one thread for every module here (faster on the busy 2-core machine, deterministic)."""
    yield


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random WanPipeline saved as a local model directory."""
    return build_tiny(tmp_path_factory.mktemp("models") / "tiny-wan", kind="wan", seed=0)


@pytest.fixture(scope="session")
def tiny_cogvideox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CogVideoXPipeline saved as a local model directory."""
    return build_tiny(tmp_path_factory.mktemp("models") / "tiny-cogvideox", kind="cogvideox", seed=0)


@pytest.fixture(scope="session")
def wan_engine(tiny_wan_dir: Path) -> Engine:
    """The tiny Wan pipeline loaded by the engine (shared: loading takes a second)."""
    return Engine.load(tiny_wan_dir)


@pytest_asyncio.fixture
async def start(tmp_path: Path, redis_url: str, tiny_wan_dir: Path) -> AsyncIterator[Start]:
    """Starts the service in-process on tmp_path; instances started by one test share the database and queue."""
    servers: list[Server] = []
    base = {
        "model_dir": str(tiny_wan_dir),
        "database_url": f"sqlite:///{tmp_path / 'jobs.db'}",
        "storage": str(tmp_path / "media"),
        "work_dir": str(tmp_path / "work"),
        "adapters_dir": str(tmp_path / "adapters"),
        "queue_key": f"vd-test:{uuid.uuid4().hex[:8]}",
        "job_lease_seconds": 3.0,
        "drift_reference_size": 10,
        "drift_window_size": 10,
    }

    group = f"video_diffusion-{uuid.uuid4().hex[:8]}"  # one consumer group per test; its instances share it

    async def start_one(broker: str = "", **settings: Any) -> tuple[Any, VideoDiffusionService]:
        kit = KitSettings(
            grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap=broker, redis_url=redis_url,
            consumer_retry_backoff_ms=10, drain_delay_seconds=0,
            consumer_group=group,  # the embedded broker does not re-form a group its last member left
        )  # fmt: skip
        service = VideoDiffusionService(
            build_runtime(kit, "video_diffusion"), VideoDiffusionSettings(**{**base, **settings})
        )
        server = Server(service)
        servers.append(server)
        port = await server.start()
        channel = client.channel(f"127.0.0.1:{port}", SERVICE, deadline=120)
        return video_diffusion_pb2_grpc.VideoDiffusionServiceStub(channel), service

    yield start_one
    for server in servers:
        await server.stop()
    await client.close_all()
