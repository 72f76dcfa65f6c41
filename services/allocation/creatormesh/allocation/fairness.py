"""The fairness engine: eight weighted principles (seed 000) scored from a creator's
signals, a total score in [0, 1] and a recommended revenue share.

Every principle score is in [0, 1]. The formulas below use these derived values
(all of them clipped to [0, 1]):

``Q`` (quality)
    ``0.30·content_value + 0.20·visual_quality + 0.20·host_performance + 0.30·overall_rating``.

``reach``
    ``log(1 + viewer_count) / log(1 + 10^7)``: log-scaled so that one giant does not
    push everybody else to zero (100 viewers → 0.29, 14,574 → 0.60, 1M → 0.86).

``A`` (audience)
    ``max(follower_count, viewer_count)``: followers, unless the period's viewers say
    the audience is larger (a viral hit is not a niche).

Principles (the score of each; the weight is configuration, seed defaults in brackets):

CONTENT_QUALITY (25)
    ``Q``. Non-decreasing in each of the four quality inputs.
TRAFFIC_CONTRIBUTION (20)
    ``0.30·reach + 0.20·interactions + 0.50·engagement`` where
    ``interactions = log(1 + 3·comment_count + like_count) / log(1 + 10^8)`` (volumes,
    log-scaled; a comment counts as three likes) and the per-viewer part
    ``engagement = 0.40·min(1, engagement_rate / 0.25) + 0.35·retention_rate + 0.25·chat_activity``.
    Non-decreasing in all six inputs.
NEWBIE_SUPPORT (15)
    ``boost(m) · (0.2 + 0.8·Q)`` with ``m = creator_experience_months`` and
    ``boost(m) = clip((6 − m) / 5, 0, 1)``: full at 0–1 months, decaying linearly to 0 at
    6 months. Scaled by quality so a newcomer with nothing to show gets a fifth of it.
NICHE_PROTECTION (15)
    ``smallness(A) · gate(Q)`` — high quality AND a small audience:
    ``smallness = clip((5 − log10 max(A, 1)) / 2, 0, 1)`` (1 up to 1,000, 0.5 at 10,000,
    0 from 100,000) and ``gate = clip((Q − 0.5) / 0.35, 0, 1)`` (0 up to Q = 0.5, full
    from Q = 0.85). Never increases with followers or viewers.
LOYALTY_REWARD (10)
    ``tenure(m) · (0.6·consistency_score + 0.4·historical_performance)`` with the
    saturating ``tenure(m) = 1 − exp(−m / 24)`` (6 months → 0.22, 2 years → 0.63, 4 → 0.86).
GEOGRAPHIC_FAIRNESS (5)
    ``1 / (1 + K·p)`` where ``p`` is the creator's region's share of the creators in the
    :class:`Context` and ``K`` the number of regions there: a region of average size
    (``p = 1/K``) scores 0.5, an under-represented one more (towards 1), a dominant one
    less — so a small region's creators are not crushed by its size. Neutral 0.5 when
    the region is unknown (empty, or not in the context) or there is no context.
CONTENT_DIVERSITY (5)
    The same with the creator's content category: rarer categories score higher;
    neutral 0.5 when unknown.
PEAK_PERFORMANCE (5)
    ``credibility · (0.7·spike + 0.3·size)`` with
    ``spike = clip(ln(peak_viewers / max(avg_viewers, 1)) / ln 4, 0, 1)`` (a peak four
    times the average is a full spike), ``size = log(1 + peak_viewers) / log(1 + 10^6)``
    and ``credibility = min(1, live_duration_minutes / 60)``: a spike in a two-minute
    stream is noise, but beyond an hour length earns nothing — real peaks, not long streams.

Total score: ``Σ weight/100 · score`` in [0, 1]. Recommended share:
``min_share + (max_share − min_share) · total`` (defaults 0.40–0.80).

The scalar :meth:`FairnessEngine.assess` and the vectorised
:meth:`FairnessEngine.principle_scores` run the same numpy code, so they agree exactly.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import math
import numbers
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from creatormesh.allocation.pool import paused_gc
from creatormesh.allocation.signals import SEED_FIELDS, CreatorSignals
from creatormesh.common.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]


class Principle(enum.Enum):
    """The eight fairness principles of the seed; values are the proto enum numbers."""

    CONTENT_QUALITY = 1
    TRAFFIC_CONTRIBUTION = 2
    NEWBIE_SUPPORT = 3
    NICHE_PROTECTION = 4
    LOYALTY_REWARD = 5
    GEOGRAPHIC_FAIRNESS = 6
    CONTENT_DIVERSITY = 7
    PEAK_PERFORMANCE = 8

    @property
    def key(self) -> str:
        """Configuration name, e.g. ``content_quality``."""
        return self.name.lower()

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``content quality``."""
        return self.name.lower().replace("_", " ")


PRINCIPLES: tuple[Principle, ...] = tuple(Principle)
DEFAULT_WEIGHTS: dict[Principle, float] = {
    Principle.CONTENT_QUALITY: 25.0,
    Principle.TRAFFIC_CONTRIBUTION: 20.0,
    Principle.NEWBIE_SUPPORT: 15.0,
    Principle.NICHE_PROTECTION: 15.0,
    Principle.LOYALTY_REWARD: 10.0,
    Principle.GEOGRAPHIC_FAIRNESS: 5.0,
    Principle.CONTENT_DIVERSITY: 5.0,
    Principle.PEAK_PERFORMANCE: 5.0,
}
WEIGHT_TOLERANCE = 1e-6

# --- formula constants (see the module docstring) ---------------------------------------------
QUALITY_MIX = {"content_value": 0.30, "visual_quality": 0.20, "host_performance": 0.20, "overall_rating": 0.30}
REACH_FULL_VIEWERS = 10_000_000
INTERACTIONS_FULL = 100_000_000
COMMENT_WEIGHT = 3.0
ENGAGEMENT_RATE_FULL = 0.25
TRAFFIC_MIX = (0.30, 0.20, 0.50)  # reach, interactions, per-viewer engagement
ENGAGEMENT_MIX = (0.40, 0.35, 0.25)  # engagement rate, retention, chat
NEWBIE_MONTHS = 6
NEWBIE_FULL_MONTHS = 1
NEWBIE_QUALITY_FLOOR = 0.2
NICHE_FULL_AUDIENCE = 1_000
NICHE_ZERO_AUDIENCE = 100_000
NICHE_QUALITY_FROM = 0.5
NICHE_QUALITY_FULL = 0.85
LOYALTY_TENURE_MONTHS = 24.0
LOYALTY_MIX = (0.6, 0.4)  # consistency, historical performance
PEAK_FULL_RATIO = 4.0
PEAK_FULL_SIZE = 1_000_000
PEAK_CREDIBLE_MINUTES = 60.0
PEAK_MIX = (0.7, 0.3)  # spike, size
NEUTRAL = 0.5


# --- weights -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    """Principle weights in percentage points: all eight, non-negative, summing to 100."""

    values: Mapping[Principle, float]

    def __post_init__(self) -> None:
        values = dict(self.values)
        unknown = [k for k in values if not isinstance(k, Principle)]
        if unknown:
            raise InvalidArgument("weights", f"unknown principle {unknown[0]!r}")
        missing = [p.key for p in PRINCIPLES if p not in values]
        if missing:
            raise InvalidArgument("weights", f"missing weight for {', '.join(missing)} (all eight are required)")
        clean: dict[Principle, float] = {}
        for p in PRINCIPLES:
            v = values[p]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                raise InvalidArgument("weights", f"{p.key} must be a finite number >= 0, got {v!r}")
            clean[p] = float(v)
        total = math.fsum(clean.values())
        if abs(total - 100.0) > WEIGHT_TOLERANCE:
            raise InvalidArgument("weights", f"must sum to 100, got {total:g}")
        object.__setattr__(self, "values", MappingProxyType(clean))

    def __hash__(self) -> int:
        return hash(tuple(self.values.items()))

    def __str__(self) -> str:
        """The :meth:`parse` form, e.g. ``content_quality=25,traffic_contribution=20,...``."""
        return ",".join(f"{p.key}={self.values[p]:g}" for p in PRINCIPLES)

    @classmethod
    def default(cls) -> Weights:
        """The seed's weights: 25, 20, 15, 15, 10, 5, 5, 5."""
        return cls(DEFAULT_WEIGHTS)

    @classmethod
    def parse(cls, text: str) -> Weights:
        """Parse ``"content_quality=30,traffic_contribution=15,..."``: all eight names
        (case-insensitive, an optional ``principle_`` prefix is accepted), numbers in
        percentage points. Errors are :class:`InvalidArgument` on ``weights`` naming the bad key."""
        values: dict[Principle, float] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key, sep, number = (s.strip() for s in item.partition("="))
            if not sep:
                raise InvalidArgument("weights", f"{item!r} is not name=value")
            name = key.lower().removeprefix("principle_")
            try:
                principle = Principle[name.upper()]
            except KeyError:
                known = ", ".join(p.key for p in PRINCIPLES)
                raise InvalidArgument("weights", f"unknown principle {key!r} (known: {known})") from None
            if principle in values:
                raise InvalidArgument("weights", f"{key!r} is given twice")
            try:
                values[principle] = float(number)
            except ValueError:
                raise InvalidArgument("weights", f"{key}: {number!r} is not a number") from None
        return cls(values)

    def vector(self) -> FloatArray:
        """The weights in :class:`Principle` order, as fractions (sum 1)."""
        return np.array([self.values[p] / 100.0 for p in PRINCIPLES], dtype=np.float64)

    def without(self, principle: Principle) -> Weights:
        """These weights with ``principle`` set to 0 and the others rescaled to sum to 100."""
        rest = math.fsum(v for p, v in self.values.items() if p is not principle)
        if rest <= 0:
            raise InvalidArgument("weights", f"nothing left to renormalise without {principle.key}")
        scaled = {p: 0.0 if p is principle else v * 100.0 / rest for p, v in self.values.items()}
        # fix the last bit of rounding so the sum is exactly representable as 100
        last = max((p for p in PRINCIPLES if p is not principle), key=lambda p: scaled[p])
        scaled[last] += 100.0 - math.fsum(scaled.values())
        return Weights(scaled)


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One principle's part of a total score: ``contribution = weight / 100 · score``."""

    principle: Principle
    weight: float
    score: float
    contribution: float
    explanation: str


@dataclass(frozen=True)
class Assessment:
    """A creator's scores: ``total_score`` is the sum of the contributions (all eight, in enum order)."""

    creator_id: str
    total_score: float
    contributions: tuple[Contribution, ...]
    rationale: str

    def contribution(self, principle: Principle) -> Contribution:
        return next(c for c in self.contributions if c.principle is principle)


# --- population context ------------------------------------------------------------------------


def _normalised(shares: Mapping[str, float], what: str, canon: str) -> Mapping[str, float]:
    clean: dict[str, float] = {}
    for key, value in shares.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidArgument(what, f"{key!r}: share must be a finite number >= 0, got {value!r}")
        name = key.strip().upper() if canon == "upper" else key.strip().lower()
        if name and value > 0:
            clean[name] = clean.get(name, 0.0) + float(value)
    total = math.fsum(clean.values())
    return MappingProxyType({k: v / total for k, v in sorted(clean.items())} if total > 0 else {})


@dataclass(frozen=True)
class Context:
    """Population information for geographic fairness and content diversity: the share
    of creators per region and per content category (shares or counts; normalised to
    sum to 1, empty keys dropped). Empty mappings mean "unknown": those principles score 0.5."""

    region_shares: Mapping[str, float]
    category_shares: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "region_shares", _normalised(self.region_shares, "region_shares", "upper"))
        object.__setattr__(self, "category_shares", _normalised(self.category_shares, "category_shares", "lower"))

    def __hash__(self) -> int:
        return hash((tuple(self.region_shares.items()), tuple(self.category_shares.items())))

    @classmethod
    def from_population(cls, signals: Sequence[CreatorSignals]) -> Context:
        """Shares of the creators (with a known region / category) in ``signals``."""
        regions = Counter(s.region for s in signals)
        categories = Counter(s.content_category for s in signals)
        regions.pop("", None)
        categories.pop("", None)
        return cls(dict(regions), dict(categories))

    @classmethod
    def neutral(cls) -> Context:
        """No population information: geographic fairness and content diversity score 0.5."""
        return cls({}, {})


# --- the vectorised core -----------------------------------------------------------------------

_FIELD = {name: i for i, name in enumerate(SEED_FIELDS)}
_GET = operator.attrgetter(*SEED_FIELDS)


def _matrix(signals: Sequence[CreatorSignals]) -> FloatArray:
    """The 17 seed inputs as an (n, 17) float array, columns in :data:`SEED_FIELDS` order."""
    n = len(signals)
    with paused_gc():
        flat = np.fromiter(itertools.chain.from_iterable(map(_GET, signals)), np.float64, n * len(SEED_FIELDS))
    return flat.reshape(n, len(SEED_FIELDS))


def _relative(keys: list[str], shares: Mapping[str, float]) -> FloatArray:
    if not shares:
        return np.full(len(keys), math.nan)
    k = float(len(shares))
    return np.array([shares.get(key, math.nan) for key in keys], dtype=np.float64) * k


def _clip01(x: FloatArray) -> FloatArray:
    return np.clip(x, 0.0, 1.0)


def _log_scale(x: FloatArray, full: float) -> FloatArray:
    return _clip01(np.log1p(x) / math.log1p(full))


def _quality(x: FloatArray) -> FloatArray:
    return _clip01(sum((w * x[:, _FIELD[name]] for name, w in QUALITY_MIX.items()), np.zeros(len(x))))


def _representation(rel: FloatArray) -> FloatArray:
    """``1 / (1 + K·p)``; NaN (unknown) → neutral 0.5."""
    out = np.full(rel.shape, NEUTRAL)
    known = ~np.isnan(rel)
    out[known] = 1.0 / (1.0 + rel[known])
    return out


def _scores(x: FloatArray, region_rel: FloatArray, category_rel: FloatArray) -> FloatArray:
    """(n, 8) principle scores in :class:`Principle` order (formulas: module docstring)."""
    f = _FIELD

    def col(name: str) -> FloatArray:
        return x[:, f[name]]

    q = _quality(x)
    months = col("creator_experience_months")

    reach = _log_scale(col("viewer_count"), REACH_FULL_VIEWERS)
    interactions = _log_scale(COMMENT_WEIGHT * col("comment_count") + col("like_count"), INTERACTIONS_FULL)
    er, ret, chat = ENGAGEMENT_MIX
    engagement = (
        er * _clip01(col("engagement_rate") / ENGAGEMENT_RATE_FULL)
        + ret * col("retention_rate")
        + chat * col("chat_activity")
    )
    tr, ti, te = TRAFFIC_MIX
    traffic = _clip01(tr * reach + ti * interactions + te * engagement)

    newbie = newbie_boost(months) * (NEWBIE_QUALITY_FLOOR + (1.0 - NEWBIE_QUALITY_FLOOR) * q)

    audience = np.maximum(col("follower_count"), col("viewer_count"))
    niche = niche_smallness(audience) * niche_gate(q)

    cons, hist = LOYALTY_MIX
    loyalty = loyalty_tenure(months) * _clip01(cons * col("consistency_score") + hist * col("historical_performance"))

    peak, avg = col("peak_viewers"), col("avg_viewers")
    spike = _clip01(np.log(np.maximum(peak, 1.0) / np.maximum(avg, 1.0)) / math.log(PEAK_FULL_RATIO))
    size = _log_scale(peak, PEAK_FULL_SIZE)
    credibility = _clip01(col("live_duration_minutes") / PEAK_CREDIBLE_MINUTES)
    ps, pz = PEAK_MIX
    peak_score = credibility * (ps * spike + pz * size)

    out = np.column_stack(
        [q, traffic, newbie, niche, loyalty, _representation(region_rel), _representation(category_rel), peak_score]
    )
    return _clip01(out)


def newbie_boost(months: FloatArray) -> FloatArray:
    """1 at 0–1 months, linearly down to 0 at 6 months."""
    span = NEWBIE_MONTHS - NEWBIE_FULL_MONTHS
    return _clip01((NEWBIE_MONTHS - months) / span)


def niche_smallness(audience: FloatArray) -> FloatArray:
    """1 up to 1,000, log-linearly down to 0 at 100,000."""
    hi, lo = math.log10(NICHE_ZERO_AUDIENCE), math.log10(NICHE_FULL_AUDIENCE)
    return _clip01((hi - np.log10(np.maximum(audience, 1.0))) / (hi - lo))


def niche_gate(q: FloatArray) -> FloatArray:
    """0 up to quality 0.5, linearly up to 1 at 0.85."""
    return _clip01((q - NICHE_QUALITY_FROM) / (NICHE_QUALITY_FULL - NICHE_QUALITY_FROM))


def loyalty_tenure(months: FloatArray) -> FloatArray:
    """``1 − exp(−months / 24)``."""
    return 1.0 - np.exp(-np.maximum(months, 0.0) / LOYALTY_TENURE_MONTHS)


# --- explanations ------------------------------------------------------------------------------


def _count(n: float) -> str:
    return f"{int(n):,}"


def _months(m: int) -> str:
    return f"{m} month{'' if m == 1 else 's'} on the platform"


def _representation_text(kind: str, key: str, shares: Mapping[str, float]) -> str:
    if not shares:
        return f"no population information on {kind}: neutral 0.5"
    if not key:
        return f"{kind} unknown: neutral 0.5"
    if key not in shares:
        return f"{kind} {key} not in the reference population: neutral 0.5"
    p, k = shares[key], len(shares)
    rel = p * k
    where = "under-represented" if rel < 0.95 else "over-represented" if rel > 1.05 else "about average"
    return f"{kind} {key} has {p:.1%} of creators ({rel:.2f}× an equal share of {k}): {where}"


def _explain(s: CreatorSignals, scores: FloatArray, context: Context) -> dict[Principle, str]:
    q = float(scores[0])
    m = s.creator_experience_months
    boost = float(newbie_boost(np.array([float(m)]))[0])
    audience = max(s.follower_count, s.viewer_count)
    small = float(niche_smallness(np.array([float(audience)]))[0])
    tenure = float(loyalty_tenure(np.array([float(m)]))[0])
    ratio = max(s.peak_viewers, 1) / max(s.avg_viewers, 1)
    if boost >= 1:
        newbie = f"{_months(m)} (< {NEWBIE_MONTHS}): full newbie support, scaled by quality {q:.2f}"
    elif boost > 0:
        newbie = f"{_months(m)} (< {NEWBIE_MONTHS}): {boost:.0%} newbie support, scaled by quality {q:.2f}"
    else:
        newbie = f"{_months(m)} (>= {NEWBIE_MONTHS}): no newbie support"
    if small <= 0:
        niche = f"audience of {_count(audience)} is not small: no niche protection"
    elif q <= NICHE_QUALITY_FROM:
        niche = f"small audience ({_count(audience)}) but quality {q:.2f} is not high: no niche protection"
    else:
        niche = f"quality {q:.2f} with an audience of {_count(audience)} (smallness {small:.2f})"
    return {
        Principle.CONTENT_QUALITY: (
            f"quality {q:.2f} (content {s.content_value:.2f}, visual {s.visual_quality:.2f}, "
            f"host {s.host_performance:.2f}, overall {s.overall_rating:.2f})"
        ),
        Principle.TRAFFIC_CONTRIBUTION: (
            f"{_count(s.viewer_count)} viewers, {_count(s.comment_count)} comments, {_count(s.like_count)} likes; "
            f"engagement {s.engagement_rate:.2f}, retention {s.retention_rate:.2f}, chat {s.chat_activity:.2f}"
        ),
        Principle.NEWBIE_SUPPORT: newbie,
        Principle.NICHE_PROTECTION: niche,
        Principle.LOYALTY_REWARD: (
            f"{_months(m)} (tenure {tenure:.2f}), consistency {s.consistency_score:.2f}, "
            f"history {s.historical_performance:.2f}"
        ),
        Principle.GEOGRAPHIC_FAIRNESS: _representation_text("region", s.region, context.region_shares),
        Principle.CONTENT_DIVERSITY: _representation_text(
            "content category", s.content_category, context.category_shares
        ),
        Principle.PEAK_PERFORMANCE: (
            f"peak {_count(s.peak_viewers)} vs average {_count(s.avg_viewers)} viewers ({ratio:.2f}×) "
            f"over {s.live_duration_minutes:g} min"
        ),
    }


def _rationale(total: float, contributions: Sequence[Contribution]) -> str:
    ranked = sorted(
        (c for c in contributions if c.contribution > 0), key=lambda c: (-c.contribution, c.principle.value)
    )
    drivers = [f"{c.principle.label} ({c.score:.2f} → +{c.contribution:.3f})" for c in ranked[:3]]
    if not drivers:
        return f"Score {total:.3f}: no principle applies."
    listed = drivers[0] if len(drivers) == 1 else ", ".join(drivers[:-1]) + " and " + drivers[-1]
    weakest = min((c for c in contributions if c.weight > 0), key=lambda c: (c.score, c.principle.value), default=None)
    tail = f"; weakest: {weakest.principle.label} ({weakest.score:.2f})" if weakest is not None else ""
    return f"Score {total:.3f}, driven by {listed}{tail}."


# --- the engine --------------------------------------------------------------------------------


class FairnessEngine:
    """Scores creators on the eight principles and maps the total to a revenue share."""

    def __init__(self, weights: Weights | None = None, min_share: float = 0.40, max_share: float = 0.80) -> None:
        for name, value in (("min_share", min_share), ("max_share", max_share)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise InvalidArgument(name, f"must be a number in [0, 1], got {value!r}")
        if min_share > max_share:
            raise InvalidArgument("max_share", f"must be >= min_share ({max_share} < {min_share})")
        self.weights = weights if weights is not None else Weights.default()
        self.min_share = float(min_share)
        self.max_share = float(max_share)
        self._w = self.weights.vector()

    @property
    def version(self) -> str:
        """Identifies the configuration: ``engine-1+`` and a digest of weights and share bounds."""
        text = f"{self.weights}|{self.min_share:g}|{self.max_share:g}"
        return "engine-1+" + hashlib.sha256(text.encode()).hexdigest()[:8]

    def principle_scores(self, signals: Sequence[CreatorSignals], context: Context | None = None) -> FloatArray:
        """(n, 8) principle scores in :class:`Principle` order, vectorised. ``context``
        None means no population information (geographic and diversity scores 0.5)."""
        ctx = context if context is not None else Context.neutral()
        if not signals:
            return np.zeros((0, len(PRINCIPLES)))
        x = _matrix(signals)
        region_rel = _relative([s.region for s in signals], ctx.region_shares)
        category_rel = _relative([s.content_category for s in signals], ctx.category_shares)
        return _scores(x, region_rel, category_rel)

    def scores(self, signals: Sequence[CreatorSignals], context: Context | None = None) -> FloatArray:
        """(n,) total scores in [0, 1]: the weighted sums of :meth:`principle_scores`."""
        if not signals:
            return np.zeros(0)
        return np.asarray(np.clip(self.principle_scores(signals, context) @ self._w, 0.0, 1.0), dtype=np.float64)

    def assess(self, creator_id: str, signals: CreatorSignals, context: Context | None = None) -> Assessment:
        """One creator's assessment: all eight contributions with explanations and a rationale."""
        ctx = context if context is not None else Context.neutral()
        row = self.principle_scores([signals], ctx)[0]
        texts = _explain(signals, row, ctx)
        contributions = tuple(
            Contribution(p, self.weights.values[p], float(row[i]), float(self._w[i] * row[i]), texts[p])
            for i, p in enumerate(PRINCIPLES)
        )
        total = float(np.clip(row @ self._w, 0.0, 1.0))
        return Assessment(creator_id, total, contributions, _rationale(total, contributions))

    def recommended_share(self, assessment: Assessment) -> float:
        """``min_share + (max_share − min_share) · total_score``."""
        total = min(1.0, max(0.0, assessment.total_score))
        return self.min_share + (self.max_share - self.min_share) * total
