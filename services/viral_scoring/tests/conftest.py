"""Fixtures shared by the viral_scoring tests: one small trained checkpoint per session, torch on one thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from creatormesh.common import client
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.viral_scoring.app import ViralScoringService
from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR
from creatormesh.viral_scoring.settings import ViralScoringSettings
from creatormesh.viral_scoring.train import TrainConfig, train
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb
from creatormesh.viral_scoring.v1 import viral_scoring_pb2_grpc

from .vllm_fixture import vllm_server  # noqa: F401  (session fixture: a real vLLM CPU server)

#: the first 400 shipped videos, a few epochs: seconds on one thread
SMALL = TrainConfig(max_records=400, epochs=6, patience=6, restarts=1, progress=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every test module runs torch on one thread (the kit's fixture)."""


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full + light models trained on the SMALL slice, shared by every viral_scoring test module."""
    path = tmp_path_factory.mktemp("viral-small-model")
    train(DEFAULT_DATA_DIR, path, SMALL, text_cache=None)
    return path


StartService = Callable[..., Awaitable[tuple[Any, ViralScoringService]]]


@pytest_asyncio.fixture
async def start_service(trained_model: Path, redis_url: str) -> AsyncIterator[StartService]:
    """Starts ViralScoringService in-process on the small checkpoint: (stub, service). With ``broker`` it consumes
    (group "viral_scoring"), without it it only serves. Settings overrides go in as keyword arguments."""
    servers: list[Server] = []

    async def start(broker: str = "", **settings: Any) -> tuple[Any, ViralScoringService]:
        kit = KitSettings(
            grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap=broker, redis_url=redis_url,
            consumer_retry_backoff_ms=10,
        )  # fmt: skip
        options = ViralScoringSettings(model_path=str(trained_model), **settings)
        service = ViralScoringService(build_runtime(kit, "viral_scoring"), options)
        server = Server(service)
        servers.append(server)
        port = await server.start()
        service_pb = pb.DESCRIPTOR.services_by_name["ViralScoringService"]
        channel = client.channel(f"127.0.0.1:{port}", service_pb, deadline=60)
        return viral_scoring_pb2_grpc.ViralScoringServiceStub(channel), service

    yield start
    for server in servers:
        await server.stop()
