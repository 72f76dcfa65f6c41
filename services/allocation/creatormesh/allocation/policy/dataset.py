"""The fairness preference dataset: pairs of answers to the same allocation prompt.

*Chosen* is the engine's share and rationale for the creator. *Rejected* is an
allocation that violates one named principle, measurably, with a rationale that
gives the violation away:

============================  ===============================================================
violated                      rejected answer
============================  ===============================================================
``content_quality``           share from audience size alone ("traffic-only"), quality ignored
``traffic_contribution``      high engagement not rewarded: paid well below the engine
``newbie_support``            a newcomer (< 6 months) underpaid for having no track record
``niche_protection``          a high-quality small creator paid like a low-quality one
``loyalty_reward``            tenure and consistency ignored: paid below the engine
``geographic_fairness``       the share cut because of the creator's region
``content_diversity``         the share cut because of the content category
``peak_performance``          a strong peak audience ignored: paid below the engine
``share_bounds``              a share outside [min_share, max_share] or above 100 % (budget-breaking)
============================  ===============================================================

Creators come from :func:`creatormesh.allocation.population.simulate` with targeted
variations (newcomers, niche, big low-quality, loyal, engaging, peaky), cycling
through every region and category. Labels are balanced (pair ``i`` gets label
``i mod 9`` in a shuffled order). Some creators get several pairs, so the held-out
split is made by creator.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from creatormesh.allocation.fairness import Assessment, Context, FairnessEngine, Principle, Weights
from creatormesh.allocation.policy.prompts import Message, build_messages, format_answer, principle_name
from creatormesh.allocation.population import simulate
from creatormesh.allocation.signals import CreatorSignals, validate

SHARE_BOUNDS = "share_bounds"
#: Every violation label: the eight principles, then out-of-bounds shares.
VIOLATIONS: tuple[str, ...] = (*(principle_name(p) for p in Principle), SHARE_BOUNDS)
#: A rejected share differs from the engine's by at least this much (or is out of bounds).
MIN_GAP = 0.05
NEWCOMER_MONTHS = 6
FALLBACK_REGIONS = ("US", "BR", "IN", "ID", "NG", "DE", "JP", "MX")
FALLBACK_CATEGORIES = ("gaming", "music", "education", "beauty", "sports", "cooking", "travel", "crafts")
QUALITY_FIELDS = ("content_value", "visual_quality", "host_performance", "overall_rating")
AUDIENCE_FIELDS = ("follower_count", "viewer_count", "peak_viewers", "avg_viewers", "comment_count", "like_count")


@dataclass(frozen=True)
class PreferencePair:
    """One DPO example. ``violated``: the principle the rejected answer violates (or
    ``share_bounds``); ``kind``: how; ``principle_score``: the engine's score of the
    creator on that principle (None for ``share_bounds``)."""

    pair_id: str
    creator_id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    violated: str
    kind: str
    chosen_share: float
    rejected_share: float
    signals: dict[str, Any] = field(default_factory=dict)
    principle_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "creator_id": self.creator_id,
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "violated": self.violated,
            "kind": self.kind,
            "chosen_share": self.chosen_share,
            "rejected_share": self.rejected_share,
            "signals": self.signals,
            "principle_score": self.principle_score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreferencePair:
        for key in ("pair_id", "creator_id", "prompt", "chosen", "rejected", "violated"):
            if key not in data:
                raise ValueError(f"preference pair without {key!r}")
        score = data.get("principle_score")
        return cls(
            pair_id=str(data["pair_id"]),
            creator_id=str(data["creator_id"]),
            prompt=[{"role": str(m["role"]), "content": str(m["content"])} for m in data["prompt"]],
            chosen=str(data["chosen"]),
            rejected=str(data["rejected"]),
            violated=str(data["violated"]),
            kind=str(data.get("kind", "")),
            chosen_share=float(data.get("chosen_share", math.nan)),
            rejected_share=float(data.get("rejected_share", math.nan)),
            signals=dict(data.get("signals") or {}),
            principle_score=None if score is None else float(score),
        )

    def creator_signals(self) -> CreatorSignals:
        return validate(self.signals)


@dataclass(frozen=True)
class _Rejected:
    share: float
    principle: str
    rationale: str
    kind: str


# --- creator variations ------------------------------------------------------------------------


def _with(signals: CreatorSignals, **changes: Any) -> CreatorSignals:
    data = signals.as_dict()
    data.update(changes)
    data["avg_viewers"] = min(data["avg_viewers"], data["peak_viewers"])
    return validate(data)


def _audience(signals: CreatorSignals, followers: int, rng: random.Random) -> dict[str, int]:
    """Audience fields rescaled so the creator has about ``followers`` followers."""
    factor = followers / max(signals.follower_count, 1)
    out = {name: max(0, round(getattr(signals, name) * factor)) for name in AUDIENCE_FIELDS}
    out["follower_count"] = followers
    if out["avg_viewers"] == 0 and out["peak_viewers"] == 0:
        out["peak_viewers"] = max(1, followers // rng.randint(20, 60))
        out["avg_viewers"] = max(1, out["peak_viewers"] // 2)
        out["viewer_count"] = max(out["viewer_count"], out["peak_viewers"])
    return out


def _quality(rng: random.Random, low: float, high: float) -> dict[str, float]:
    return {name: round(rng.uniform(low, high), 3) for name in QUALITY_FIELDS}


def vary_newcomer(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    return _with(
        s,
        creator_experience_months=rng.randint(0, NEWCOMER_MONTHS - 1),
        historical_performance=round(rng.uniform(0.2, 0.6), 3),
        **_quality(rng, 0.45, 0.9),
        **_audience(s, rng.randint(200, 40_000), rng),
    )


def vary_niche(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    return _with(
        s,
        creator_experience_months=max(s.creator_experience_months, rng.randint(6, 48)),
        **_quality(rng, 0.8, 0.98),
        **_audience(s, rng.randint(500, 15_000), rng),
    )


def vary_big_low_quality(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    return _with(s, **_quality(rng, 0.1, 0.4), **_audience(s, rng.randint(1_000_000, 30_000_000), rng))


def vary_loyal(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    return _with(
        s,
        creator_experience_months=rng.randint(36, 120),
        consistency_score=round(rng.uniform(0.85, 0.99), 3),
        historical_performance=round(rng.uniform(0.7, 0.95), 3),
    )


def vary_engaging(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    viewers = max(s.viewer_count, 100)
    return _with(
        s,
        engagement_rate=round(rng.uniform(0.15, 0.4), 3),
        retention_rate=round(rng.uniform(0.6, 0.9), 3),
        chat_activity=round(rng.uniform(0.6, 0.95), 3),
        comment_count=round(viewers * rng.uniform(0.5, 2.0)),
        like_count=round(viewers * rng.uniform(2.0, 6.0)),
    )


def vary_peaky(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    avg = max(s.avg_viewers, 50)
    peak = round(avg * rng.uniform(4.0, 8.0))
    return _with(
        s,
        avg_viewers=avg,
        peak_viewers=peak,
        viewer_count=max(s.viewer_count, peak * 3),
        live_duration_minutes=max(s.live_duration_minutes, round(rng.uniform(60, 240), 1)),
    )


def vary_none(s: CreatorSignals, rng: random.Random) -> CreatorSignals:
    return s


Variation = Callable[[CreatorSignals, random.Random], CreatorSignals]


# --- the generator -------------------------------------------------------------------------------


def population_size(n_pairs: int) -> int:
    """How many creators :func:`generate` simulates as the base population for ``n_pairs``."""
    return max(50, n_pairs)


def population_context(n_pairs: int, seed: int = 0) -> Context:
    """The engine context the chosen answers of ``generate(n_pairs, seed)`` were computed in."""
    return Context.from_population([s for _, s in simulate(population_size(n_pairs), seed)])


class _Generator:
    def __init__(self, seed: int, weights: Weights | None, min_share: float, max_share: float, size: int) -> None:
        self.rng = random.Random(seed)
        self.weights = weights or Weights.default()
        self.engine = FairnessEngine(self.weights, min_share=min_share, max_share=max_share)
        self.population = simulate(size, seed)
        self.context = Context.from_population([s for _, s in self.population])
        regions = sorted({s.region for _, s in self.population if s.region})
        categories = sorted({s.content_category for _, s in self.population if s.content_category})
        self.regions = regions if len(regions) >= 3 else list(FALLBACK_REGIONS)
        self.categories = categories if len(categories) >= 3 else list(FALLBACK_CATEGORIES)
        self.creators: dict[str, CreatorSignals] = {}
        self.made = 0
        self.low, self.high = min_share, max_share

    # creators

    def new_creator(self, variation: str, vary: Variation) -> tuple[str, CreatorSignals]:
        base_id, base = self.population[self.rng.randrange(len(self.population))]
        region = self.regions[self.made % len(self.regions)]
        category = self.categories[(self.made // len(self.regions) + self.made) % len(self.categories)]
        self.made += 1
        signals = _with(vary(base, self.rng), region=region, content_category=category)
        creator_id = f"{base_id}~{variation}{self.made}"
        self.creators[creator_id] = signals
        return creator_id, signals

    def any_creator(self) -> tuple[str, CreatorSignals]:
        """An existing creator half of the time (so creators get several pairs), else a new one."""
        if self.creators and self.rng.random() < 0.5:
            creator_id = self.rng.choice(sorted(self.creators))
            return creator_id, self.creators[creator_id]
        return self.new_creator("any", vary_none)

    # engine

    def assess(self, creator_id: str, signals: CreatorSignals) -> tuple[Assessment, float]:
        assessment = self.engine.assess(creator_id, signals, self.context)
        return assessment, round(self.engine.recommended_share(assessment), 3)

    @staticmethod
    def score(assessment: Assessment, principle: str) -> float | None:
        for c in assessment.contributions:
            if principle_name(c.principle) == principle:
                return float(c.score)
        return None

    def cut(self, share: float, low: float = 0.06, high: float = 0.16) -> float | None:
        """A share cut below the engine's by at least MIN_GAP, within bounds, or None."""
        rejected = round(max(self.low, share - self.rng.uniform(low, high)), 3)
        return rejected if share - rejected >= MIN_GAP - 1e-9 else None

    # rejected answers, one per label

    def rejected(self, label: str, cid: str, s: CreatorSignals, share: float, a: Assessment) -> _Rejected | None:
        r = self.rng
        if label == "content_quality":
            level = min(1.0, max(0.0, (math.log10(s.avg_viewers + 1) - 1) / 4))
            audience = round(self.low + (self.high - self.low) * level, 3)
            if abs(audience - share) < MIN_GAP:
                return None
            text = r.choice(
                [
                    f"Share set from audience size alone ({s.avg_viewers:,} average viewers, "
                    f"{s.follower_count:,} followers); content quality ({s.content_value:.2f}) is not considered.",
                    f"Paid in proportion to views only: {s.viewer_count:,} viewers decide the share, "
                    f"whatever the quality rating ({s.overall_rating:.2f}).",
                ]
            )
            return _Rejected(audience, "traffic_contribution", text, "traffic_only")
        if label == "traffic_contribution":
            low = self.cut(share)
            if low is None:
                return None
            text = r.choice(
                [
                    f"Engagement is not rewarded: an engagement rate of {s.engagement_rate:.2f}, "
                    f"{s.like_count:,} likes and {s.comment_count:,} comments count for nothing.",
                    f"Chat activity ({s.chat_activity:.2f}) and retention ({s.retention_rate:.2f}) are ignored; "
                    "the audience's interaction earns no extra share.",
                ]
            )
            return _Rejected(low, "content_quality", text, "engagement_ignored")
        if label == "newbie_support":
            low = self.cut(share)
            if low is None:
                return None
            m = s.creator_experience_months
            months = f"{m} month{'' if m == 1 else 's'}"
            text = r.choice(
                [
                    f"Only {months} on the platform: no track record yet, so paid below established creators.",
                    f"New creator ({months}): newcomers must prove themselves first, share reduced.",
                ]
            )
            return _Rejected(low, "loyalty_reward", text, "newcomer_underpaid")
        if label == "niche_protection":
            low_quality = _with(s, **_quality(r, 0.15, 0.35))
            _, like_low = self.assess(cid, low_quality)
            low = min(like_low, share - r.uniform(0.06, 0.12))
            low = round(max(self.low, low), 3)
            if share - low < MIN_GAP:
                return None
            text = r.choice(
                [
                    f"Small audience of {s.follower_count:,} followers: paid like a low-quality creator "
                    f"despite content value {s.content_value:.2f}.",
                    f"Only {s.avg_viewers:,} average viewers, so the high quality ({s.overall_rating:.2f}) "
                    "is not worth protecting; paid as a low-quality channel.",
                ]
            )
            return _Rejected(low, "traffic_contribution", text, "niche_paid_as_low_quality")
        if label == "loyalty_reward":
            low = self.cut(share)
            if low is None:
                return None
            text = r.choice(
                [
                    f"{s.creator_experience_months} months on the platform and consistency "
                    f"{s.consistency_score:.2f} earn nothing extra; long-term creators get no reward.",
                    "Tenure is irrelevant: paid like any creator without a history of "
                    f"{s.creator_experience_months} months of consistent streams.",
                ]
            )
            return _Rejected(low, "content_quality", text, "loyalty_ignored")
        if label == "geographic_fairness":
            low = self.cut(share)
            if low is None or not s.region:
                return None
            text = r.choice(
                [
                    f"Creator based in region {s.region}: share reduced because audiences there monetise less.",
                    f"Region {s.region} is a low-priority market, so the share is cut by {share - low:.2f}.",
                ]
            )
            return _Rejected(low, "traffic_contribution", text, "region_penalised")
        if label == "content_diversity":
            low = self.cut(share)
            if low is None or not s.content_category:
                return None
            text = r.choice(
                [
                    f"The {s.content_category} category is off-trend: share cut to favour mainstream content.",
                    f"Streams about {s.content_category} are not what the platform promotes, so the share is lower.",
                ]
            )
            return _Rejected(low, "traffic_contribution", text, "category_penalised")
        if label == "peak_performance":
            low = self.cut(share)
            if low is None:
                return None
            text = r.choice(
                [
                    f"Peak of {s.peak_viewers:,} concurrent viewers ignored; only the average of "
                    f"{s.avg_viewers:,} counts.",
                    f"Peak-hour performance earns nothing: the share ignores the {s.peak_viewers:,}-viewer peak.",
                ]
            )
            return _Rejected(low, "content_quality", text, "peak_ignored")
        if label == SHARE_BOUNDS:
            top = _top_principle(a)
            mode = r.randrange(3)
            if mode == 0:
                over = round(self.high + r.uniform(0.05, 0.2), 3)
                text = f"Outstanding creator: paid {over:.0%} of the revenue, above the {self.high:.0%} cap."
                return _Rejected(over, top, text, "above_max_share")
            if mode == 1:
                over = round(r.uniform(1.05, 1.6), 3)
                text = f"Paid {over:.0%} of the revenue it generated: more than the budget holds, to keep the creator."
                return _Rejected(over, top, text, "budget_breaking")
            under = round(max(0.0, self.low - r.uniform(0.1, 0.35)), 3)
            text = f"Share cut to {under:.0%}, below the {self.low:.0%} floor, to save on payouts."
            return _Rejected(under, top, text, "below_min_share")
        raise ValueError(f"unknown violation {label!r}")


_VARIATIONS: dict[str, list[tuple[str, Variation]]] = {
    "content_quality": [("niche", vary_niche), ("big", vary_big_low_quality)],
    "traffic_contribution": [("engaging", vary_engaging)],
    "newbie_support": [("newcomer", vary_newcomer)],
    "niche_protection": [("niche", vary_niche)],
    "loyalty_reward": [("loyal", vary_loyal)],
    "peak_performance": [("peaky", vary_peaky)],
}


def _top_principle(assessment: Assessment) -> str:
    if not assessment.contributions:
        return principle_name(Principle.CONTENT_QUALITY)
    best = max(assessment.contributions, key=lambda c: c.contribution)
    return principle_name(best.principle)


def generate(
    n_pairs: int,
    seed: int = 0,
    weights: Weights | None = None,
    min_share: float = 0.40,
    max_share: float = 0.80,
    max_attempts: int = 60,
) -> list[PreferencePair]:
    """``n_pairs`` preference pairs, balanced over :data:`VIOLATIONS`, reproducible for ``seed``."""
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    gen = _Generator(seed, weights, min_share, max_share, population_size(n_pairs))
    labels = [VIOLATIONS[i % len(VIOLATIONS)] for i in range(n_pairs)]
    gen.rng.shuffle(labels)
    pairs: list[PreferencePair] = []
    for index, label in enumerate(labels):
        for attempt in range(max_attempts):
            options = _VARIATIONS.get(label)
            if options:
                name, vary = options[(index + attempt) % len(options)]
                cid, signals = gen.new_creator(name, vary)
            else:
                cid, signals = gen.any_creator() if attempt < max_attempts // 2 else gen.new_creator("any", vary_none)
            assessment, share = gen.assess(cid, signals)
            rejected = gen.rejected(label, cid, signals, share, assessment)
            if rejected is not None:
                break
        else:
            raise RuntimeError(f"could not build a {label} pair in {max_attempts} attempts (seed {seed})")
        prompt = build_messages(signals, gen.weights, min_share, max_share)
        pairs.append(
            PreferencePair(
                pair_id=f"pair-{seed}-{index:05d}",
                creator_id=cid,
                prompt=prompt,
                chosen=format_answer(share, _top_principle(assessment), assessment.rationale),
                rejected=format_answer(rejected.share, rejected.principle, rejected.rationale),
                violated=label,
                kind=rejected.kind,
                chosen_share=share,
                rejected_share=rejected.share,
                signals=signals.as_dict(),
                principle_score=None if label == SHARE_BOUNDS else gen.score(assessment, label),
            )
        )
    return pairs


def share_only(pairs: Iterable[PreferencePair]) -> list[PreferencePair]:
    """Diagnostic pairs: each rejected answer is the chosen one with only the share
    replaced by the rejected share (same principle, same rationale). A policy that
    prefers these chosen answers prefers the engine's number itself, not just the wording."""
    out = []
    for pair in pairs:
        chosen = json.loads(pair.chosen)
        principle, rationale = str(chosen.get("principle", "")), str(chosen.get("rationale", ""))
        rejected = format_answer(pair.rejected_share, principle, rationale)
        out.append(replace(pair, pair_id=f"{pair.pair_id}-share", rejected=rejected, kind=f"{pair.kind}/share_only"))
    return out


def label_counts(pairs: Iterable[PreferencePair]) -> dict[str, int]:
    counts = Counter(p.violated for p in pairs)
    return {label: counts.get(label, 0) for label in VIOLATIONS}


def split_by_creator(
    pairs: Sequence[PreferencePair], held_out: int, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out): about ``held_out`` pairs whose creators have no pair in train.
    Creators are drawn for the label the held-out set has fewest of, so it stays balanced."""
    by_creator: dict[str, list[PreferencePair]] = defaultdict(list)
    for pair in pairs:
        by_creator[pair.creator_id].append(pair)
    rng = random.Random(seed)
    creators = sorted(by_creator)
    rng.shuffle(creators)
    queues: dict[str, list[str]] = defaultdict(list)
    for creator in creators:
        for label in sorted({p.violated for p in by_creator[creator]}):
            queues[label].append(creator)
    chosen: set[str] = set()
    held_counts: Counter[str] = Counter()
    taken = 0
    while taken < held_out:
        for queue in queues.values():
            while queue and queue[-1] in chosen:
                queue.pop()
        open_labels = [label for label in VIOLATIONS if queues.get(label)]
        open_labels += sorted(label for label in queues if label not in VIOLATIONS and queues[label])
        if not open_labels:
            break
        label = min(open_labels, key=lambda name: held_counts[name])
        creator = queues[label].pop()
        chosen.add(creator)
        taken += len(by_creator[creator])
        held_counts.update(p.violated for p in by_creator[creator])
    train = [p for p in pairs if p.creator_id not in chosen]
    held = [p for p in pairs if p.creator_id in chosen]
    return train, held


def to_dpo_records(pairs: Iterable[PreferencePair]) -> list[dict[str, Any]]:
    """Conversational records for TRL's DPOTrainer (prompt messages, chosen/rejected assistant turns)."""
    return [
        {
            "prompt": pair.prompt,
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
        }
        for pair in pairs
    ]


def write_jsonl(pairs: Iterable[PreferencePair], path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(pair.as_dict(), ensure_ascii=False, allow_nan=False) + "\n")
    return out


def read_jsonl(path: str | Path) -> list[PreferencePair]:
    pairs = []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                pairs.append(PreferencePair.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return pairs


@dataclass(frozen=True)
class DatasetFiles:
    train_path: Path
    heldout_path: Path
    n_train: int
    n_heldout: int
    counts: dict[str, int]


def write_dataset(out_dir: str | Path, n_pairs: int, held_out: int, seed: int = 0) -> DatasetFiles:
    """Generate ``n_pairs`` pairs and write ``train.jsonl`` and ``heldout.jsonl`` (split by creator)."""
    pairs = generate(n_pairs, seed)
    train, held = split_by_creator(pairs, held_out, seed)
    out = Path(out_dir)
    return DatasetFiles(
        write_jsonl(train, out / "train.jsonl"),
        write_jsonl(held, out / "heldout.jsonl"),
        len(train),
        len(held),
        label_counts(pairs),
    )
