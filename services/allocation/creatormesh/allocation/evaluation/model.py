"""Live-stream evaluation inputs, outputs and input validation (plain Python, no transport).

The inputs mirror the seed's ``POST /api/live-stream-evaluation`` body (``stream_id``,
``keyframes[{timestamp, image_data}]``, ``transcript``, ``basic_metrics``), except that
``image_data`` holds the raw encoded image bytes (the gRPC ``bytes`` field), not base64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from PIL import Image

from creatormesh.allocation.evaluation.images import ImageRejected, open_image
from creatormesh.common.errors import InvalidArgument

DIMENSIONS = ("content_value", "visual_quality", "host_performance", "overall_rating")
"""The four scores of an evaluation, in the order of the contract."""
LOCAL = "local"
VISION_LLM = "vision_llm"
MAX_STREAM_ID_CHARS = 128
MAX_DURATION_MINUTES = 10080.0  # one week


@dataclass(frozen=True)
class Keyframe:
    """One still image: its offset from the stream start and its encoded bytes (JPEG/PNG/WebP)."""

    timestamp_seconds: float
    image_data: bytes


@dataclass(frozen=True)
class BasicMetrics:
    """The seed's ``basic_metrics``. All zeros means "not provided": engagement is then neutral."""

    duration_minutes: float
    peak_viewers: int
    average_viewers: int
    total_comments: int
    total_likes: int


@dataclass(frozen=True)
class StreamInput:
    """One stream to evaluate."""

    stream_id: str
    keyframes: tuple[Keyframe, ...]
    transcript: str
    metrics: BasicMetrics


@dataclass(frozen=True)
class Limits:
    """Input limits enforced by :func:`validate_stream`."""

    max_keyframes: int = 32
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    max_transcript_chars: int = 200_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Reason:
    """A human-readable reason; ``dimension`` is one of :data:`DIMENSIONS` or "" (general remark)."""

    dimension: str
    text: str


@dataclass(frozen=True)
class Evaluation:
    """Scores in [0, 1] with reasons. ``fallback`` is set when the vision LLM was asked for but
    the local evaluator answered (``fallback_reason`` says why)."""

    stream_id: str
    content_value: float
    visual_quality: float
    host_performance: float
    overall_rating: float
    reasons: tuple[Reason, ...]
    evaluator: str
    fallback: bool = False
    fallback_reason: str = ""
    version: str = ""
    measurements: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def scores(self) -> dict[str, float]:
        """The four scores by name."""
        return {name: float(getattr(self, name)) for name in DIMENSIONS}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: object, field_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(field_name, f"must be a finite count, got {value!r}")
    if value < 0:
        raise InvalidArgument(field_name, f"must be >= 0, got {value}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidArgument(field_name, f"must be a whole number, got {value}")


def validate_metrics(metrics: BasicMetrics, prefix: str = "") -> None:
    """Check ``basic_metrics``: finite, non-negative, duration <= one week, average <= peak viewers."""
    p = prefix + "basic_metrics."
    d = metrics.duration_minutes
    if not _finite(d):
        raise InvalidArgument(p + "duration_minutes", f"must be a finite number, got {d!r}")
    if not 0.0 <= d <= MAX_DURATION_MINUTES:
        raise InvalidArgument(p + "duration_minutes", f"must be in [0, {MAX_DURATION_MINUTES:g}], got {d}")
    for name in ("peak_viewers", "average_viewers", "total_comments", "total_likes"):
        _count(getattr(metrics, name), p + name)
    if metrics.average_viewers > metrics.peak_viewers:
        raise InvalidArgument(
            p + "average_viewers",
            f"must be <= peak_viewers ({metrics.average_viewers} > {metrics.peak_viewers})",
        )


def decode_keyframes(stream: StreamInput, limits: Limits = DEFAULT_LIMITS, prefix: str = "") -> list[Image.Image]:
    """Validate ``stream`` (see :func:`validate_stream`) and return its decoded keyframes, in order."""
    if not stream.stream_id.strip():
        raise InvalidArgument(prefix + "stream_id", "is required")
    if len(stream.stream_id) > MAX_STREAM_ID_CHARS:
        raise InvalidArgument(prefix + "stream_id", f"must be at most {MAX_STREAM_ID_CHARS} characters")
    n = len(stream.keyframes)
    if n == 0 and not stream.transcript.strip():
        raise InvalidArgument(prefix + "keyframes", "nothing to evaluate: no keyframes and an empty transcript")
    if n > limits.max_keyframes:
        raise InvalidArgument(prefix + "keyframes", f"{n} keyframes > max {limits.max_keyframes}")
    if len(stream.transcript) > limits.max_transcript_chars:
        raise InvalidArgument(
            prefix + "transcript", f"{len(stream.transcript)} characters > max {limits.max_transcript_chars}"
        )
    validate_metrics(stream.metrics, prefix)
    previous = -math.inf
    for i, keyframe in enumerate(stream.keyframes):
        t = keyframe.timestamp_seconds
        name = f"{prefix}keyframes[{i}].timestamp_seconds"
        if not _finite(t) or t < 0:
            raise InvalidArgument(name, f"must be a finite number >= 0, got {t!r}")
        if t <= previous:
            raise InvalidArgument(name, f"timestamps must increase ({t:g} after {previous:g})")
        previous = t
        size = len(keyframe.image_data)
        if size > limits.max_image_bytes:
            raise InvalidArgument(f"{prefix}keyframes[{i}].image_data", f"{size} bytes > max {limits.max_image_bytes}")
    images = []
    for i, keyframe in enumerate(stream.keyframes):
        try:
            images.append(open_image(keyframe.image_data, limits.max_image_pixels))
        except ImageRejected as exc:
            raise InvalidArgument(f"{prefix}keyframes[{i}].image_data", str(exc)) from exc
    return images


def validate_stream(stream: StreamInput, limits: Limits = DEFAULT_LIMITS, prefix: str = "") -> None:
    """Raise :class:`~creatormesh.common.errors.InvalidArgument` naming the offending field unless
    ``stream`` can be evaluated. ``prefix`` is prepended to field paths (e.g. ``"requests[2]."``).

    Rules: ``stream_id`` is 1..128 characters; at least one keyframe or a non-blank transcript
    ("keyframes": nothing to evaluate); at most ``limits.max_keyframes`` keyframes; transcript at most
    ``limits.max_transcript_chars``; keyframe timestamps finite, >= 0 and strictly increasing; each
    image 1..``limits.max_image_bytes`` bytes, at most ``limits.max_image_pixels`` pixels (checked from
    the header before decoding) and a fully decodable JPEG, PNG or WebP; metrics finite and >= 0,
    duration <= 10080 minutes, ``average_viewers <= peak_viewers``. Cheap checks run first, so an
    oversized request is rejected before any image is decoded.
    """
    for image in decode_keyframes(stream, limits, prefix):
        image.close()
