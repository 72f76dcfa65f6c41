"""Checks on the contract tree that hold whatever buf says: naming, layout,
generated code present, idempotency marked, every topic's payload resolvable."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from google.protobuf.descriptor_pb2 import MethodOptions

from creatormesh.common import topics

PROTOS = Path(__file__).resolve().parents[3] / "protos"
FILES = sorted(PROTOS.glob("creatormesh/**/*.proto"))
SERVICES = ["allocation", "viral_scoring", "ranking", "stream_clipper", "video_diffusion"]


def module_for(path: Path) -> str:
    return ".".join(path.relative_to(PROTOS).with_suffix("").parts) + "_pb2"


def test_every_service_and_the_events_have_contracts() -> None:
    packages = {p.relative_to(PROTOS).parts[1] for p in FILES}
    assert set(SERVICES) | {"events"} <= packages


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROTOS)))
def test_package_matches_directory_and_is_versioned(path: Path) -> None:
    text = path.read_text()
    package = re.search(r"^package\s+([\w.]+);", text, re.M)
    assert package, "no package statement"
    parts = path.relative_to(PROTOS).parent.parts
    assert package.group(1) == ".".join(parts)
    assert re.fullmatch(r"creatormesh\.[a-z][a-z_]*\.v[1-9][0-9]*", package.group(1))
    for suffix in ("_pb2.py", "_pb2.pyi"):
        assert path.with_name(path.stem + suffix).exists(), f"missing generated {suffix}: run make protos"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROTOS)))
def test_services_are_named_and_reads_are_marked_side_effect_free(path: Path) -> None:
    module = importlib.import_module(module_for(path))
    for service in module.DESCRIPTOR.services_by_name.values():
        assert service.name.endswith("Service")
        importlib.import_module(module_for(path) + "_grpc")
        for method in service.methods:
            level = method.GetOptions().idempotency_level
            if method.name.startswith(("Get", "List", "Watch")):
                assert level == MethodOptions.NO_SIDE_EFFECTS, f"{service.name}.{method.name}"


@pytest.mark.parametrize("topic", sorted(topics.PAYLOADS))
def test_every_topic_payload_resolves(topic: str) -> None:
    cls = topics.payload_class(topic)
    assert cls.DESCRIPTOR.full_name == topics.PAYLOADS[topic]


def test_envelope_carries_the_required_fields() -> None:
    from creatormesh.events.v1.envelope_pb2 import Envelope

    fields = {f.name: f.number for f in Envelope.DESCRIPTOR.fields}
    for name in ("event_id", "type", "occurred_at", "producer", "schema_version", "payload"):
        assert name in fields


def test_allocation_inputs_are_all_there() -> None:
    from creatormesh.allocation.v1 import allocation_pb2

    names = {f.name for f in allocation_pb2.CreatorSignals.DESCRIPTOR.fields}
    seed = [
        "creator_experience_months",
        "follower_count",
        "historical_performance",
        "consistency_score",
        "content_value",
        "visual_quality",
        "host_performance",
        "overall_rating",
        "viewer_count",
        "engagement_rate",
        "retention_rate",
        "chat_activity",
        "live_duration_minutes",
        "peak_viewers",
        "avg_viewers",
        "comment_count",
        "like_count",
    ]
    assert set(seed) <= names and len(seed) == 17
