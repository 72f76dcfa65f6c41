"""The grpc.aio server bootstrap every service runs on.

A service is a :class:`Service` subclass: it names its servicers, loads its
resources in :meth:`Service.load`, and lists its Kafka handlers. :func:`serve`
does the rest, in this order:

1. metrics endpoint up, gRPC server listening, health NOT_SERVING;
2. ``load()``; then health SERVING and the consumers start;
3. on SIGTERM/SIGINT: health NOT_SERVING, optional drain delay, consumers stop
   after their current event, in-flight calls get ``grace_seconds`` to finish,
   resources close, exit code 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from creatormesh.common import metrics
from creatormesh.common.bus import EventBus, Handler, run_consumer
from creatormesh.common.interceptors import KitServerInterceptor
from creatormesh.common.redis_pool import redis_client
from creatormesh.common.settings import KitSettings

log = logging.getLogger("creatormesh.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Servicer:
    """One gRPC service to register: the generated ``add_*_to_server`` function, the
    servicer instance and the full service name (for health and reflection)."""

    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    full_name: str


@dataclass
class Runtime:
    """What the kit gives a service: settings, the event bus (if configured), Redis."""

    settings: KitSettings
    bus: EventBus | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def redis(self) -> Any:
        return redis_client(self.settings.redis_url)


class Service:
    """Base class of a service: override what applies; the defaults do nothing."""

    name: ClassVar[str] = "service"
    version: ClassVar[str] = "0.1.0"
    #: Diagnostic services (echo) are not started by ``creatormesh up``.
    diagnostic: ClassVar[bool] = False

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def servicers(self) -> Sequence[Servicer]:
        return ()

    async def load(self) -> None:
        """Load models and open resources. The service is NOT_SERVING until this returns."""

    def handlers(self) -> dict[str, Handler]:
        """Kafka handlers by topic; the consumer group is the service name (or the kit's ``consumer_group``)."""
        return {}

    async def close(self) -> None:
        """Release what ``load`` opened."""


def server_options(settings: KitSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_connection_age_ms", settings.max_connection_age_ms),
        ("grpc.max_connection_age_grace_ms", settings.max_connection_age_grace_ms),
        ("grpc.so_reuseport", 0),
    ]


class Server:
    """A running kit server for one service (usable in-process by tests and benchmarks)."""

    def __init__(self, service: Service, *, interceptors: bool = True) -> None:
        self.service = service
        self.settings = service.runtime.settings
        self.health = HealthServicer()
        self.port = 0
        self._consumers: list[asyncio.Task[None]] = []
        self._stop_consumers = asyncio.Event()
        self._grpc = grpc.aio.server(
            interceptors=[KitServerInterceptor()] if interceptors else [],
            options=server_options(self.settings),
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs or None,
        )

    @property
    def names(self) -> list[str]:
        return [s.full_name for s in self.service.servicers()]

    async def start(self) -> int:
        """Listen (NOT_SERVING), load the service, then report SERVING and start consumers."""
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        for item in self.service.servicers():
            item.add(item.servicer, self._grpc)
        reflection.enable_server_reflection(
            [*self.names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self._grpc,
        )
        for name in ["", *self.names]:
            await self.health.set(name, NOT_SERVING)
        self.port = self._grpc.add_insecure_port(f"{self.settings.grpc_host}:{self.settings.grpc_port}")
        await self._grpc.start()
        log.info("%s listening on port %d (NOT_SERVING until loaded)", self.service.name, self.port)
        await self.service.load()
        for name in ["", *self.names]:
            await self.health.set(name, SERVING)
        self._start_consumers()
        log.info("%s SERVING on port %d", self.service.name, self.port)
        return self.port

    def _start_consumers(self) -> None:
        handlers = self.service.handlers()
        if not handlers:
            return
        bus = self.service.runtime.bus
        if bus is None:
            log.warning(
                "%s has Kafka handlers but CREATORMESH_KAFKA_BOOTSTRAP is empty: not consuming", self.service.name
            )
            return
        group = self.settings.consumer_group or self.service.name
        task = asyncio.create_task(
            run_consumer(bus, group, handlers, self._stop_consumers), name=f"{self.service.name}-consumer"
        )
        self._consumers.append(task)

    async def stop(self) -> None:
        """Graceful shutdown: NOT_SERVING, drain delay, consumers, in-flight calls, resources."""
        await self.health.enter_graceful_shutdown()
        log.info("%s shutting down: NOT_SERVING, draining", self.service.name)
        if self.settings.drain_delay_seconds:
            await asyncio.sleep(self.settings.drain_delay_seconds)
        self._stop_consumers.set()
        if self._consumers:
            await asyncio.gather(*self._consumers, return_exceptions=True)
        await self._grpc.stop(self.settings.grace_seconds)
        await self.service.close()
        if self.service.runtime.bus is not None:
            await self.service.runtime.bus.close()
        log.info("%s stopped", self.service.name)


def build_runtime(settings: KitSettings, producer: str) -> Runtime:
    bus = EventBus.from_settings(settings, producer) if settings.kafka_bootstrap else None
    return Runtime(settings=settings, bus=bus)


async def serve(service_cls: type[Service], settings: KitSettings) -> int:
    """Run ``service_cls`` until SIGTERM/SIGINT; returns the process exit code."""
    metrics.SERVICE_INFO.info({"service": service_cls.name, "version": service_cls.version})
    metrics.serve(settings.metrics_port)
    service = service_cls(build_runtime(settings, service_cls.name))
    server = Server(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except Exception:
        log.exception("%s failed to start", service_cls.name)
        await server.stop()
        return 1
    # what load() built (models, indexes, catalogues: often millions of objects) lives as long as the process;
    # frozen, the cyclic collector stops rescanning it, which otherwise shows up as multi-ms pauses in calls
    gc.freeze()
    await stop.wait()
    await server.stop()
    return 0
