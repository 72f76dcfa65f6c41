"""Client side of the standard gRPC health service."""

from __future__ import annotations

import asyncio
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(target: str, service: str = "", timeout: float = 2.0) -> str:
    """SERVING / NOT_SERVING / SERVICE_UNKNOWN / UNREACHABLE for ``service`` at ``target``."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return "SERVICE_UNKNOWN"
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def wait_serving(target: str, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``target`` reports SERVING; fails early when ``proc`` (the server's process) exits."""
    deadline = time.monotonic() + timeout
    while await check(target) != "SERVING":
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {target} exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target} not SERVING after {timeout:.0f}s")
        await asyncio.sleep(0.2)
