"""SIGTERM with calls in flight: health turns NOT_SERVING, every call finishes, exit 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from creatormesh.common import client
from creatormesh.common.echo import ECHO_SERVICE
from creatormesh.common.health import check
from creatormesh.common.runtime.processes import free_port, serve_command, service_env
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc


async def test_sigterm_drains_in_flight_calls(close_channels: None) -> None:
    port = free_port()
    env = service_env(port, drain_delay_seconds="1", grace_seconds="10", log_format="text")
    proc = subprocess.Popen(serve_command("echo"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while await check(target) != "SERVING":
            assert time.monotonic() < deadline and proc.poll() is None, "echo never became SERVING"
            await asyncio.sleep(0.1)
        stub = echo_pb2_grpc.EchoServiceStub(client.channel(target, ECHO_SERVICE, deadline=30))
        calls = [
            asyncio.ensure_future(stub.Echo(echo_pb2.EchoRequest(message=f"m{i}", delay_ms=2500))) for i in range(20)
        ]
        await asyncio.sleep(0.5)  # all 20 are in flight now
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        async with grpc.aio.insecure_channel(target) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        results = await asyncio.gather(*calls, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert sorted(r.message for r in results if not isinstance(r, BaseException)) == sorted(
            f"m{i}" for i in range(20)
        )
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "shutting down" in output and "stopped" in output
