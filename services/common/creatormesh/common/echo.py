"""The diagnostics service (``creatormesh.testing.v1.EchoService``): a trivial RPC
for the kit's tests, the drain test and the overhead benchmark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from creatormesh.common.errors import require
from creatormesh.common.plugins import ServicePlugin
from creatormesh.common.server import Service, Servicer
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc


class EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(self, request: echo_pb2.EchoRequest, context: Any) -> echo_pb2.EchoResponse:
        require(request.delay_ms <= 60_000, "delay_ms", "must be at most 60000")
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        return echo_pb2.EchoResponse(message=request.message, payload=request.payload)

    async def EchoStream(
        self, request: echo_pb2.EchoStreamRequest, context: Any
    ) -> AsyncIterator[echo_pb2.EchoStreamResponse]:
        require(1 <= request.count <= 1000, "count", "must be between 1 and 1000")
        require(request.interval_ms <= 10_000, "interval_ms", "must be at most 10000")
        for i in range(request.count):
            if i and request.interval_ms:
                await asyncio.sleep(request.interval_ms / 1000)
            yield echo_pb2.EchoStreamResponse(message=request.message, index=i)


ECHO_SERVICE = echo_pb2.DESCRIPTOR.services_by_name["EchoService"]


class EchoService(Service):
    name = "echo"
    diagnostic = True

    def servicers(self) -> Sequence[Servicer]:
        return [Servicer(echo_pb2_grpc.add_EchoServiceServicer_to_server, EchoServicer(), ECHO_SERVICE.full_name)]


plugin = ServicePlugin(name="echo", service="creatormesh.common.echo:EchoService", diagnostic=True, order=0)
