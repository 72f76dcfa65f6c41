"""Mapping raw measurements to scores in [0, 1] through explicit reference points.

Every score of the local evaluator goes through one of these functions, so each
measurement documents *where* it reaches 0 and 1 (see the constants next to the
measurement that uses them)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

NEUTRAL = 0.5
"""The score of a dimension or component with nothing to measure (no keyframes, no transcript, ...)."""


def clamp01(x: float) -> float:
    """``x`` limited to [0, 1]; NaN becomes the neutral 0.5."""
    if math.isnan(x):
        return NEUTRAL
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def ramp(x: float, zero_at: float, one_at: float) -> float:
    """Linear from 0 at ``zero_at`` to 1 at ``one_at`` (either direction), clamped outside."""
    return clamp01((x - zero_at) / (one_at - zero_at))


def log_ramp(x: float, zero_at: float, one_at: float) -> float:
    """Like :func:`ramp` on a log10 scale: for quantities spanning decades (rates, variances).
    ``zero_at`` and ``one_at`` must be > 0; ``x <= 0`` scores as ``x = zero_at``."""
    if x <= 0.0:
        return 0.0 if zero_at < one_at else 1.0
    return ramp(math.log10(x), math.log10(zero_at), math.log10(one_at))


def piecewise(x: float, points: Sequence[tuple[float, float]]) -> float:
    """Linear interpolation through ``points`` (x ascending, scores in [0, 1]), flat outside."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def blend(parts: Sequence[tuple[float, float]]) -> float:
    """Weighted mean of ``(weight, score)`` pairs, clamped to [0, 1]."""
    total = sum(w for w, _ in parts)
    return clamp01(sum(w * s for w, s in parts) / total) if total > 0 else NEUTRAL
