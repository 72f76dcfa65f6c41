"""Kafka topics and the payload message each one carries (DESIGN.md, Events).

One table, read by the bus (to decode), by `creatormesh up` (to create topics)
and by the deployment chart's topic list.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

CLIPS_CREATED = "clips.created"
CONTENT_SCORED = "content.scored"
INTERACTIONS = "interactions"
CREATOR_METRICS = "creator.metrics"
ALLOCATIONS_DECIDED = "allocations.decided"
VIDEOS_REQUESTED = "videos.requested"
VIDEOS_GENERATED = "videos.generated"
PREFERENCES_RECORDED = "preferences.recorded"
RETRAIN_REQUESTED = "retrain.requested"
#: diagnostics: `creatormesh demo` and the tests send a round trip through the bus here
SELFCHECK = "mesh.selfcheck"

DLQ_SUFFIX = ".dlq"

#: topic -> full name of the protobuf payload inside the Envelope
PAYLOADS: dict[str, str] = {
    CLIPS_CREATED: "creatormesh.events.v1.ClipCreated",
    CONTENT_SCORED: "creatormesh.events.v1.ContentScored",
    INTERACTIONS: "creatormesh.events.v1.Interaction",
    CREATOR_METRICS: "creatormesh.events.v1.CreatorMetricsReported",
    ALLOCATIONS_DECIDED: "creatormesh.events.v1.AllocationDecided",
    VIDEOS_REQUESTED: "creatormesh.events.v1.VideoRequested",
    VIDEOS_GENERATED: "creatormesh.events.v1.VideoGenerated",
    PREFERENCES_RECORDED: "creatormesh.events.v1.PreferenceRecorded",
    RETRAIN_REQUESTED: "creatormesh.events.v1.RetrainRequested",
    SELFCHECK: "creatormesh.testing.v1.EchoRequest",
}


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX


def all_topics() -> list[str]:
    """Every topic with its dead-letter topic."""
    return [name for topic in PAYLOADS for name in (topic, dlq(topic))]


@lru_cache(maxsize=16)
def _load_package(package: str) -> None:
    """Import every generated module of a proto package, e.g. ``creatormesh.events.v1``."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")


def message_class(full_name: str) -> type[Message]:
    """The generated class of a message in the contract tree, by full name."""
    _load_package(full_name.rpartition(".")[0])
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def payload_class(topic: str) -> type[Message]:
    """The payload class of ``topic`` (KeyError for a topic that is not in the table)."""
    return message_class(PAYLOADS[topic])
