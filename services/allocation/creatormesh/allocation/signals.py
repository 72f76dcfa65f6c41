"""The 17 seed inputs of a creator (plus region and content category), their
valid ranges, and validation that names the offending field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from creatormesh.common.errors import InvalidArgument

MAX_COUNT = 10**12


@dataclass(frozen=True)
class Range:
    """Valid values of one input: [low, high], integer or real."""

    low: float
    high: float
    integer: bool
    unit: str


#: Every seed input, in the seed's order, with its valid range.
RANGES: dict[str, Range] = {
    "creator_experience_months": Range(0, 1200, True, "months on the platform"),
    "follower_count": Range(0, MAX_COUNT, True, "followers"),
    "historical_performance": Range(0, 1, False, "score"),
    "consistency_score": Range(0, 1, False, "score"),
    "content_value": Range(0, 1, False, "score"),
    "visual_quality": Range(0, 1, False, "score"),
    "host_performance": Range(0, 1, False, "score"),
    "overall_rating": Range(0, 1, False, "score"),
    "viewer_count": Range(0, MAX_COUNT, True, "viewers"),
    "engagement_rate": Range(0, 1, False, "rate"),
    "retention_rate": Range(0, 1, False, "rate"),
    "chat_activity": Range(0, 1, False, "rate"),
    "live_duration_minutes": Range(0, 10080, False, "minutes"),
    "peak_viewers": Range(0, MAX_COUNT, True, "concurrent viewers"),
    "avg_viewers": Range(0, MAX_COUNT, True, "concurrent viewers"),
    "comment_count": Range(0, MAX_COUNT, True, "comments"),
    "like_count": Range(0, MAX_COUNT, True, "likes"),
}
SEED_FIELDS = tuple(RANGES)


@dataclass(frozen=True)
class CreatorSignals:
    """One creator's inputs, already validated (build with :func:`validate`)."""

    creator_experience_months: int
    follower_count: int
    historical_performance: float
    consistency_score: float
    content_value: float
    visual_quality: float
    host_performance: float
    overall_rating: float
    viewer_count: int
    engagement_rate: float
    retention_rate: float
    chat_activity: float
    live_duration_minutes: float
    peak_viewers: int
    avg_viewers: int
    comment_count: int
    like_count: int
    region: str = ""
    content_category: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(name: str, value: Any, rng: Range, path: str) -> float:
    if value is None:
        raise InvalidArgument(path, "is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(path, f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(path, "must be a finite number")
    if rng.integer and isinstance(value, float) and not value.is_integer():
        raise InvalidArgument(path, f"must be a whole number of {rng.unit}")
    if not rng.low <= value <= rng.high:
        low = int(rng.low) if rng.integer else rng.low
        high = int(rng.high) if rng.integer else rng.high
        raise InvalidArgument(path, f"must be in [{low}, {high}] ({rng.unit}), got {value}")
    return value


def validate(values: Mapping[str, Any], prefix: str = "") -> CreatorSignals:
    """Check every input (presence, type, finiteness, range, consistency) and build
    :class:`CreatorSignals`. Errors name the field as ``<prefix><field>``."""
    out: dict[str, Any] = {}
    for name, rng in RANGES.items():
        value = _check(name, values.get(name), rng, prefix + name)
        out[name] = int(value) if rng.integer else float(value)
    if out["avg_viewers"] > out["peak_viewers"]:
        raise InvalidArgument(
            prefix + "avg_viewers", f"must not exceed peak_viewers ({out['avg_viewers']} > {out['peak_viewers']})"
        )
    for name in ("region", "content_category"):
        text = values.get(name) or ""
        if not isinstance(text, str) or len(text) > 64:
            raise InvalidArgument(prefix + name, "must be a string of at most 64 characters")
        out[name] = text.strip().lower() if name == "content_category" else text.strip().upper()
    return CreatorSignals(**out)


#: The request body of the seed's POST /api/revenue-allocation example.
SEED_EXAMPLE: dict[str, Any] = {
    "creator_experience_months": 1,
    "follower_count": 50000,
    "historical_performance": 0.57,
    "consistency_score": 0.37,
    "content_value": 0.83,
    "visual_quality": 0.59,
    "host_performance": 0.66,
    "overall_rating": 0.69,
    "viewer_count": 14574,
    "engagement_rate": 0.12,
    "retention_rate": 0.58,
    "chat_activity": 0.44,
    "live_duration_minutes": 120,
    "peak_viewers": 14574,
    "avg_viewers": 12515,
    "comment_count": 23523,
    "like_count": 29275,
}
