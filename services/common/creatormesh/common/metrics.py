"""Prometheus metrics shared by every service (names follow go-grpc-prometheus,
so standard dashboards and the canary AnalysisTemplates work unchanged)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

log = logging.getLogger("creatormesh.metrics")

GRPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", ["grpc_service", "grpc_method", "grpc_type"]
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its end on the server.",
    ["grpc_service", "grpc_method", "grpc_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GRPC_IN_FLIGHT = Gauge("grpc_server_in_flight", "RPCs being handled now.", ["grpc_service", "grpc_method"])

EVENTS_PROCESSED = Counter(
    "creatormesh_events_processed_total",
    "Events handled by a consumer, by outcome (applied, duplicate, dead_lettered).",
    ["topic", "group", "outcome"],
)
EVENTS_FAILED = Counter(
    "creatormesh_event_handler_failures_total", "Failed handler attempts (before retry or DLQ).", ["topic", "group"]
)
CONSUMER_LAG = Gauge(
    "creatormesh_consumer_lag", "Messages behind the partition's high watermark.", ["topic", "partition", "group"]
)
EVENTS_PUBLISHED = Counter("creatormesh_events_published_total", "Events acknowledged by the broker.", ["topic"])

BATCH_SIZE = Histogram(
    "creatormesh_batch_size",
    "Calls served together by one dynamic batch.",
    ["batcher"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)

SERVICE_INFO = Info("creatormesh_service", "Which service and version this process runs.")


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0: disabled)."""
    if port:
        start_http_server(port)
        log.info("metrics on :%d/metrics", port)
