"""Real test media made with the imageio-ffmpeg binary: quiet noise with loud bursts at known times."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from creatormesh.common import client
from creatormesh.common.media import ffmpeg_exe
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.stream_clipper.app import StreamClipperService
from creatormesh.stream_clipper.settings import StreamClipperSettings
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb
from creatormesh.stream_clipper.v1 import stream_clipper_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["StreamClipperService"]

SECONDS = 60.0
BURSTS: tuple[tuple[float, float], ...] = ((10.0, 14.0), (40.0, 44.0))
"""(start, end) seconds of the loud bursts in `burst_wav`."""


def make_burst_wav(path: Path, bursts: tuple[tuple[float, float], ...], gains: tuple[float, ...]) -> Path:
    """A mono 16 kHz WAV of quiet pink noise where each burst is the noise turned up by its gain."""
    chain = ",".join(
        f"volume=volume={gain}:enable='between(t,{a},{b})'" for (a, b), gain in zip(bursts, gains, strict=True)
    )
    spec = f"anoisesrc=color=pink:amplitude=0.02:sample_rate=16000:seed=7:duration={SECONDS},{chain}"
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", spec]
    subprocess.run([*cmd, "-ac", "1", "-ar", "16000", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def bursts() -> tuple[tuple[float, float], ...]:
    """(start, end) seconds of the bursts in burst_wav / even_burst_wav."""
    return BURSTS


@pytest.fixture(scope="session")
def burst_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of quiet noise, bursts at 10-14 s (x25) and 40-44 s (x20)."""
    return make_burst_wav(tmp_path_factory.mktemp("media") / "bursts.wav", BURSTS, (25.0, 20.0))


@pytest.fixture(scope="session")
def even_burst_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same bursts, equally loud (x20), so only other signals can rank them."""
    return make_burst_wav(tmp_path_factory.mktemp("media") / "even.wav", BURSTS, (20.0, 20.0))


StartClipper = Callable[..., Awaitable[tuple[Any, StreamClipperService]]]


@pytest_asyncio.fixture
async def start_clipper(tmp_path: Path, redis_url: str) -> AsyncIterator[StartClipper]:
    """Starts StreamClipperService in-process on a test database/storage in tmp_path: (stub, service). Every
    instance started by one test shares the database (so a second one can resume the first one's jobs). With
    ``broker`` it consumes content.scored and publishes clips.created. Settings overrides are keyword arguments."""
    servers: list[Server] = []
    base = {
        "database_url": f"sqlite:///{tmp_path / 'clipper.db'}",
        "work_dir": str(tmp_path / "work"),
        "storage": str(tmp_path / "media"),
        "redis_prefix": f"clipper-test-{uuid.uuid4().hex[:8]}",
    }

    async def start(broker: str = "", **settings: Any) -> tuple[Any, StreamClipperService]:
        kit = KitSettings(
            grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, kafka_bootstrap=broker, redis_url=redis_url,
            consumer_retry_backoff_ms=10, drain_delay_seconds=0,
        )  # fmt: skip
        service = StreamClipperService(
            build_runtime(kit, "stream_clipper"), StreamClipperSettings(**{**base, **settings})
        )
        server = Server(service)
        servers.append(server)
        port = await server.start()
        channel = client.channel(f"127.0.0.1:{port}", SERVICE, deadline=120)
        return stream_clipper_pb2_grpc.StreamClipperServiceStub(channel), service

    yield start
    for server in servers:
        await server.stop()
