"""Contract tests: a real kit server on a free port, called through the kit's client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from creatormesh.common import client, context, errors, grpc_errors
from creatormesh.common.echo import ECHO_SERVICE, EchoServicer
from creatormesh.common.server import Runtime, Server, Service, Servicer
from creatormesh.common.settings import KitSettings
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc


class Behaviours(EchoServicer):
    """Echo, except for messages that ask for a failure."""

    def __init__(self) -> None:
        self.unavailable_left = 0
        self.seen_traces: list[str] = []

    async def Echo(self, request: echo_pb2.EchoRequest, ctx: Any) -> echo_pb2.EchoResponse:
        trace = context.current()
        assert trace is not None
        self.seen_traces.append(trace.trace_id)
        if request.message == "invalid":
            raise errors.InvalidArgument("items[2].follower_count", "must be >= 0")
        if request.message == "missing":
            raise errors.NotFound("creator", "c-9")
        if request.message == "overload":
            raise errors.ResourceExhausted("queue full")
        if request.message == "boom":
            raise KeyError("secret-internal-detail")
        if request.message == "flaky" and self.unavailable_left > 0:
            self.unavailable_left -= 1
            raise errors.Unavailable("warming up")
        return await super().Echo(request, ctx)

    async def EchoStream(self, request: echo_pb2.EchoStreamRequest, ctx: Any) -> AsyncIterator[Any]:
        if request.message == "flaky" and self.unavailable_left > 0:
            self.unavailable_left -= 1
            raise errors.Unavailable("warming up")
        if request.message == "boom-later":
            yield echo_pb2.EchoStreamResponse(message="first")
            raise RuntimeError("stream broke")
        async for item in super().EchoStream(request, ctx):
            yield item


class Diagnostics(Service):
    name = "diagnostics"

    def __init__(self, runtime: Runtime, gate: asyncio.Event | None = None) -> None:
        super().__init__(runtime)
        self.servicer = Behaviours()
        self.gate = gate

    def servicers(self) -> Sequence[Servicer]:
        return [Servicer(echo_pb2_grpc.add_EchoServiceServicer_to_server, self.servicer, ECHO_SERVICE.full_name)]

    async def load(self) -> None:
        if self.gate is not None:
            await self.gate.wait()


def settings(**kw: Any) -> KitSettings:
    base: dict[str, Any] = {"grpc_host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0, "grace_seconds": 5}
    return KitSettings(**{**base, **kw})


@pytest.fixture
async def server(close_channels: None) -> AsyncIterator[tuple[Server, Diagnostics, str]]:
    service = Diagnostics(Runtime(settings()))
    srv = Server(service)
    port = await srv.start()
    yield srv, service, f"127.0.0.1:{port}"
    await srv.stop()


def stub(target: str, deadline: float = 5.0) -> echo_pb2_grpc.EchoServiceStub:
    return echo_pb2_grpc.EchoServiceStub(client.channel(target, ECHO_SERVICE, deadline=deadline))


async def test_echo_round_trip_carries_the_callers_trace(server: tuple[Server, Diagnostics, str]) -> None:
    _, service, target = server
    trace = context.new_trace()
    with context.use(trace):
        reply = await stub(target).Echo(echo_pb2.EchoRequest(message="hi", payload=b"\x00\x01"))
    assert (reply.message, reply.payload) == ("hi", b"\x00\x01")
    assert service.servicer.seen_traces[-1] == trace.trace_id


@pytest.mark.parametrize(
    ("message", "code", "needle"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "items[2].follower_count"),
        ("missing", grpc.StatusCode.NOT_FOUND, "c-9"),
        ("overload", grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
        ("boom", grpc.StatusCode.INTERNAL, "KeyError"),
    ],
)
async def test_errors_map_to_status_codes(
    server: tuple[Server, Diagnostics, str], message: str, code: grpc.StatusCode, needle: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub(server[2]).Echo(echo_pb2.EchoRequest(message=message))
    assert info.value.code() == code
    assert needle in (info.value.details() or "")
    assert "secret-internal-detail" not in (info.value.details() or "")


async def test_invalid_argument_carries_a_field_violation(server: tuple[Server, Diagnostics, str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub(server[2]).Echo(echo_pb2.EchoRequest(message="invalid"))
    assert grpc_errors.field_violations(info.value) == [("items[2].follower_count", "must be >= 0")]


async def test_validation_in_stream_and_failure_mid_stream(server: tuple[Server, Diagnostics, str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub(server[2]).EchoStream(echo_pb2.EchoStreamRequest(message="x", count=0)):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "count" in (info.value.details() or "")
    got: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for item in stub(server[2]).EchoStream(echo_pb2.EchoStreamRequest(message="boom-later", count=3)):
            got.append(item.message)
    assert got == ["first"]
    assert info.value.code() == grpc.StatusCode.INTERNAL


async def test_stream_round_trip(server: tuple[Server, Diagnostics, str]) -> None:
    items = [r async for r in stub(server[2]).EchoStream(echo_pb2.EchoStreamRequest(message="m", count=5))]
    assert [r.index for r in items] == [0, 1, 2, 3, 4]


async def test_idempotent_methods_are_retried_on_unavailable_and_others_are_not(
    server: tuple[Server, Diagnostics, str],
) -> None:
    _, service, target = server
    assert ("creatormesh.testing.v1.EchoService", "Echo") in client.idempotent_methods([ECHO_SERVICE])
    assert ("creatormesh.testing.v1.EchoService", "EchoStream") not in client.idempotent_methods([ECHO_SERVICE])
    service.servicer.unavailable_left = 2
    reply = await stub(target).Echo(echo_pb2.EchoRequest(message="flaky"))
    assert reply.message == "flaky" and service.servicer.unavailable_left == 0
    service.servicer.unavailable_left = 1
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub(target).EchoStream(echo_pb2.EchoStreamRequest(message="flaky", count=1)):
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_default_deadline_applies_to_calls_without_one(server: tuple[Server, Diagnostics, str]) -> None:
    target = server[2]
    fast = echo_pb2_grpc.EchoServiceStub(client.channel(target, deadline=0.2))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fast.Echo(echo_pb2.EchoRequest(message="slow", delay_ms=2000))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    reply = await fast.Echo(echo_pb2.EchoRequest(message="slow", delay_ms=300), timeout=5)
    assert reply.message == "slow"


async def test_health_reflection_and_metrics(server: tuple[Server, Diagnostics, str]) -> None:
    target = server[2]
    await stub(target).Echo(echo_pb2.EchoRequest(message="count me"))
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", ECHO_SERVICE.full_name):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in responses for s in r.list_services_response.service}
    assert {ECHO_SERVICE.full_name, "grpc.health.v1.Health"} <= names
    labels = {"grpc_service": ECHO_SERVICE.full_name, "grpc_method": "Echo", "grpc_type": "unary", "grpc_code": "OK"}
    assert (REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0) >= 1
    latency = REGISTRY.get_sample_value(
        "grpc_server_handling_seconds_count", {k: v for k, v in labels.items() if k != "grpc_code"}
    )
    assert (latency or 0) >= 1


async def test_not_serving_until_loaded(close_channels: None) -> None:
    gate = asyncio.Event()
    srv = Server(Diagnostics(Runtime(settings()), gate))
    starting = asyncio.create_task(srv.start())
    while srv.port == 0:
        await asyncio.sleep(0.01)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        gate.set()
        await starting
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await srv.stop()


async def test_oversized_messages_and_concurrency_limit_are_resource_exhausted(close_channels: None) -> None:
    srv = Server(Diagnostics(Runtime(settings(max_message_bytes=64 * 1024, max_concurrent_rpcs=2))))
    target = f"127.0.0.1:{await srv.start()}"
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub(target).Echo(echo_pb2.EchoRequest(payload=b"x" * 200_000))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        calls = [stub(target).Echo(echo_pb2.EchoRequest(message="w", delay_ms=500)) for _ in range(4)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        codes = [r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results]
        assert codes.count(grpc.StatusCode.OK) == 2
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 2
    finally:
        await srv.stop()
