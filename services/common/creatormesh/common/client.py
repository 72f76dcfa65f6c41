"""gRPC client factory: shared channels, a default deadline on every call, trace
propagation, and retries on UNAVAILABLE for idempotent methods only.

Which methods are idempotent is read from the contracts themselves
(``option idempotency_level = NO_SIDE_EFFECTS | IDEMPOTENT``), so the retry
policy cannot drift from the protos::

    from creatormesh.ranking.v1 import ranking_pb2, ranking_pb2_grpc
    stub = ranking_pb2_grpc.RankingServiceStub(
        channel("ranking:50051", ranking_pb2.DESCRIPTOR.services_by_name["RankingService"]))
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from creatormesh.common import context

RETRYABLE_LEVELS = {MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT}

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def idempotent_methods(services: Iterable[ServiceDescriptor]) -> list[tuple[str, str]]:
    """(service, method) pairs whose contract marks them safe to retry."""
    return [
        (service.full_name, method.name)
        for service in services
        for method in service.methods
        if method.GetOptions().idempotency_level in RETRYABLE_LEVELS
    ]


def service_config(services: Iterable[ServiceDescriptor], round_robin: bool = False) -> str:
    """gRPC service config JSON: a retry policy on exactly the idempotent methods; with ``round_robin``, calls
    spread over every address the target resolves to instead of gRPC's default pick-first."""
    names = [{"service": s, "method": m} for s, m in idempotent_methods(services)]
    config: dict[str, Any] = {"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}] if names else []}
    if round_robin:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    return json.dumps(config)


class _Defaults(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds the default deadline and the trace context to every outgoing call."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        trace = context.current_or_new()
        if not metadata.get_all("traceparent"):
            metadata.add("traceparent", trace.child().traceparent)
        if not metadata.get_all("x-request-id"):
            metadata.add("x-request-id", trace.request_id)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout if details.timeout is not None else self.deadline,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


_ChannelKey = tuple[str, tuple[str, ...], bool]  # target, service names, round robin
_channels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ChannelKey, grpc.aio.Channel]]
_channels = weakref.WeakKeyDictionary()


def channel(
    target: str,
    *services: ServiceDescriptor,
    deadline: float | None = None,
    max_message_bytes: int = 16 * 1024 * 1024,
    round_robin: bool = False,
) -> grpc.aio.Channel:
    """The shared channel to ``target`` for ``services`` in this event loop. ``round_robin`` spreads calls over
    every address the target resolves to (``ipv4:a,b``, a headless service's pods). It is not the default: a
    round-robin subchannel that lost its server waits out a reconnect backoff and fails calls meanwhile, where
    pick-first reconnects on the next call (a restarted server on the same address answers at once)."""
    key = (target, tuple(s.full_name for s in services), round_robin)
    per_loop = _channels.setdefault(asyncio.get_running_loop(), {})
    existing = per_loop.get(key)
    if existing is not None:
        return existing
    if deadline is None:
        from creatormesh.common.settings import KitSettings, load

        deadline = load(KitSettings).client_deadline_seconds
    options = [
        ("grpc.service_config", service_config(services, round_robin)),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    created = grpc.aio.insecure_channel(target, options=options, interceptors=[_Defaults(deadline)])
    per_loop[key] = created
    return created


async def close_all() -> None:
    """Close this loop's channels (at shutdown and between tests)."""
    per_loop = _channels.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(c.close() for c in per_loop.values()))
