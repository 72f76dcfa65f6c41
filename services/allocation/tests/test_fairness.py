"""The fairness engine: weights, every principle (range, monotonicity, newcomer boost,
niche protection, neutral context), vectorised == scalar, and the seed example."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creatormesh.allocation.fairness import (
    PRINCIPLES,
    Assessment,
    Context,
    FairnessEngine,
    Principle,
    Weights,
)
from creatormesh.allocation.population import simulate
from creatormesh.allocation.signals import SEED_EXAMPLE, CreatorSignals, validate
from creatormesh.common.errors import InvalidArgument

QUALITY = ("content_value", "visual_quality", "host_performance", "overall_rating")
TRAFFIC = ("viewer_count", "engagement_rate", "retention_rate", "chat_activity", "comment_count", "like_count")
CQ, TC, NS, NP, LR, GF, CD, PP = PRINCIPLES
ENGINE = FairnessEngine()
CONTEXT = Context.from_population([s for _, s in simulate(400, 11)])
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

unit = st.floats(0, 1, allow_nan=False)
count = st.integers(0, 10**9)


@st.composite
def signals(draw: st.DrawFn) -> CreatorSignals:
    peak = draw(count)
    return CreatorSignals(
        creator_experience_months=draw(st.integers(0, 1200)),
        follower_count=draw(count),
        historical_performance=draw(unit),
        consistency_score=draw(unit),
        content_value=draw(unit),
        visual_quality=draw(unit),
        host_performance=draw(unit),
        overall_rating=draw(unit),
        viewer_count=draw(count),
        engagement_rate=draw(unit),
        retention_rate=draw(unit),
        chat_activity=draw(unit),
        live_duration_minutes=draw(st.floats(0, 10080, allow_nan=False)),
        peak_viewers=peak,
        avg_viewers=draw(st.integers(0, peak)),
        comment_count=draw(count),
        like_count=draw(count),
        region=draw(st.sampled_from(["", "US", "BR", "KE", "ZZ"])),
        content_category=draw(st.sampled_from(["", "gaming", "crafts", "education", "unknown-cat"])),
    )


def seed_signals(**changes: Any) -> CreatorSignals:
    return validate({**SEED_EXAMPLE, **changes})


def score(s: CreatorSignals, principle: Principle, context: Context | None = CONTEXT) -> float:
    return ENGINE.assess("c", s, context).contribution(principle).score


def share(s: CreatorSignals, context: Context | None = CONTEXT) -> float:
    return ENGINE.recommended_share(ENGINE.assess("c", s, context))


# --- weights -----------------------------------------------------------------------------------


def test_principles_match_the_proto_enum() -> None:
    from creatormesh.allocation.v1 import allocation_pb2 as pb

    proto = {name.removeprefix("PRINCIPLE_"): number for name, number in pb.Principle.items() if number}
    assert proto == {p.name: p.value for p in Principle}


def test_default_weights_are_the_seeds() -> None:
    w = Weights.default()
    assert [w.values[p] for p in PRINCIPLES] == [25, 20, 15, 15, 10, 5, 5, 5]
    assert math.fsum(w.values.values()) == 100
    assert w.vector().sum() == pytest.approx(1.0)


def test_parse_round_trips_and_ignores_case() -> None:
    w = Weights.default()
    assert Weights.parse(str(w)) == w
    text = "CONTENT_QUALITY=30, traffic_contribution=15,Newbie_Support=15,niche_protection=15,"
    text += "loyalty_reward=10,geographic_fairness=5,content_diversity=5,principle_peak_performance=5"
    parsed = Weights.parse(text)
    assert parsed.values[CQ] == 30 and parsed.values[TC] == 15 and parsed.values[PP] == 5
    assert hash(parsed) == hash(Weights.parse(str(parsed)))


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("content_quality=25,traffic=20", "traffic"),
        ("content_quality=25,content_quality=25", "content_quality"),
        ("content_quality=abc", "content_quality"),
        ("content_quality", "content_quality"),
        ("content_quality=25,traffic_contribution=20", "missing"),
        (str(Weights.default()).replace("content_quality=25", "content_quality=26"), "sum to 100"),
        (str(Weights.default()).replace("content_quality=25", "content_quality=nan"), "content_quality"),
        (
            str(Weights.default()).replace("content_quality=25", "content_quality=-5").replace("=20", "=50"),
            "content_quality",
        ),
    ],
)
def test_parse_errors_name_the_bad_key(text: str, mentions: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Weights.parse(text)
    assert info.value.field == "weights"
    assert mentions in info.value.description


def test_weights_must_sum_to_100_within_tolerance() -> None:
    values = dict(Weights.default().values)
    values[CQ] += 5e-7
    Weights(values)  # within 1e-6
    values[CQ] += 1e-5
    with pytest.raises(InvalidArgument, match="sum to 100") as info:
        Weights(values)
    assert info.value.field == "weights"
    with pytest.raises(InvalidArgument, match="missing"):
        Weights({CQ: 100.0})


def test_without_zeroes_one_principle_and_renormalises() -> None:
    for p in PRINCIPLES:
        w = Weights.default().without(p)
        assert w.values[p] == 0
        assert math.fsum(w.values.values()) == pytest.approx(100, abs=1e-9)
        others = [q for q in PRINCIPLES if q is not p]
        ratios = {round(w.values[q] / Weights.default().values[q], 9) for q in others}
        assert len(ratios) == 1  # the others keep their proportions


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_share": -0.1}, "min_share"),
        ({"max_share": 1.5}, "max_share"),
        ({"min_share": 0.7, "max_share": 0.6}, "max_share"),
        ({"min_share": math.nan}, "min_share"),
    ],
)
def test_share_bounds_are_validated(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        FairnessEngine(**kwargs)
    assert info.value.field == field


# --- the seed example -------------------------------------------------------------------------


def test_seed_example_gets_a_sensible_share() -> None:
    a = ENGINE.assess("seed", seed_signals())
    share = ENGINE.recommended_share(a)
    # a 1-month newcomer with good content and a mid-sized audience: above the middle of 40–80 %
    assert 0.55 <= share <= 0.65
    assert share == pytest.approx(0.40 + 0.40 * a.total_score)
    assert [c.principle for c in a.contributions] == list(PRINCIPLES)
    assert [c.weight for c in a.contributions] == [25, 20, 15, 15, 10, 5, 5, 5]
    assert math.fsum(c.contribution for c in a.contributions) == pytest.approx(a.total_score, abs=1e-12)
    for c in a.contributions:
        assert 0 <= c.score <= 1 and c.contribution == pytest.approx(c.weight / 100 * c.score)
        assert c.explanation
    assert a.contribution(NS).score > 0.7  # full newbie support, scaled by quality 0.71
    assert "1 month on the platform" in a.contribution(NS).explanation
    assert a.contribution(GF).score == 0.5 and "neutral" in a.contribution(GF).explanation
    assert a.contribution(CD).score == 0.5 and "neutral" in a.contribution(CD).explanation
    assert a.contribution(LR).score < 0.05  # one month is no loyalty
    # the rationale names the biggest drivers, on one line
    assert "content quality" in a.rationale and "newbie support" in a.rationale
    assert a.rationale == " ".join(a.rationale.split())


def test_rationale_names_the_top_contributions() -> None:
    a = ENGINE.assess("c", simulate(30, 2)[4][1], CONTEXT)
    top = sorted(a.contributions, key=lambda c: -c.contribution)[:2]
    for c in top:
        assert c.principle.label in a.rationale


def test_zero_weight_principle_contributes_nothing() -> None:
    engine = FairnessEngine(Weights.default().without(NS))
    a = engine.assess("c", seed_signals())
    assert a.contribution(NS).contribution == 0 and a.contribution(NS).score > 0
    assert a.total_score < ENGINE.assess("c", seed_signals()).total_score


def test_share_bounds_are_respected() -> None:
    engine = FairnessEngine(min_share=0.5, max_share=0.6)
    for _, s in simulate(50, 3):
        assert 0.5 <= engine.recommended_share(engine.assess("c", s, CONTEXT)) <= 0.6


# --- every principle --------------------------------------------------------------------------


@PROPERTY
@given(signals())
def test_every_score_is_in_unit_interval(s: CreatorSignals) -> None:
    for context in (CONTEXT, None):
        a = ENGINE.assess("c", s, context)
        assert all(0.0 <= c.score <= 1.0 for c in a.contributions)
        assert 0.0 <= a.total_score <= 1.0
        assert 0.40 <= ENGINE.recommended_share(a) <= 0.80


@PROPERTY
@given(signals(), st.sampled_from(QUALITY), unit)
def test_more_content_quality_never_lowers_the_share(s: CreatorSignals, name: str, more: float) -> None:
    higher = dataclasses.replace(s, **{name: max(getattr(s, name), more)})
    assert share(higher) >= share(s) - 1e-12
    for p in (CQ, NS, NP):
        assert score(higher, p) >= score(s, p) - 1e-12


@PROPERTY
@given(signals(), st.sampled_from(TRAFFIC), st.data())
def test_more_traffic_never_lowers_traffic_contribution(s: CreatorSignals, name: str, data: st.DataObject) -> None:
    current = getattr(s, name)
    more = data.draw(st.integers(current, 10**12)) if isinstance(current, int) else data.draw(st.floats(current, 1))
    changes: dict[str, Any] = {name: more}
    higher = dataclasses.replace(s, **changes)
    assert score(higher, TC) >= score(s, TC) - 1e-12


@PROPERTY
@given(signals(), count)
def test_more_followers_never_raise_the_niche_score(s: CreatorSignals, extra: int) -> None:
    bigger = dataclasses.replace(s, follower_count=s.follower_count + extra)
    assert score(bigger, NP) <= score(s, NP) + 1e-12


@PROPERTY
@given(signals(), st.integers(0, 5), st.integers(6, 1200))
def test_newbie_beats_veteran_with_the_same_stats(s: CreatorSignals, newbie: int, veteran: int) -> None:
    new = dataclasses.replace(s, creator_experience_months=newbie)
    old = dataclasses.replace(s, creator_experience_months=veteran)
    assert score(old, NS) == 0.0
    assert score(new, NS) > score(old, NS)


@PROPERTY
@given(signals(), st.integers(0, 1200), st.integers(0, 1200))
def test_newbie_support_decays_and_loyalty_grows_with_tenure(s: CreatorSignals, m1: int, m2: int) -> None:
    early, late = (dataclasses.replace(s, creator_experience_months=m) for m in sorted((m1, m2)))
    assert score(late, NS) <= score(early, NS) + 1e-12
    assert score(late, LR) >= score(early, LR) - 1e-12


def test_newbie_support_is_full_in_the_first_month_and_gone_at_six() -> None:
    perfect = seed_signals(**dict.fromkeys(QUALITY, 1.0))
    values = [score(dataclasses.replace(perfect, creator_experience_months=m), NS) for m in range(8)]
    assert values[0] == values[1] == 1.0
    assert values[2] > values[3] > values[4] > values[5] > 0
    assert values[6] == values[7] == 0
    # scaled by quality: a newcomer with nothing to show does not get everything
    nothing = seed_signals(**dict.fromkeys(QUALITY, 0.0))
    assert 0 < score(nothing, NS) <= 0.25


def test_niche_protection_needs_quality_and_a_small_audience() -> None:
    good = dict.fromkeys(QUALITY, 0.9)
    small = {"follower_count": 800, "viewer_count": 500, "peak_viewers": 60, "avg_viewers": 30}
    assert score(seed_signals(**good, **small), NP) == 1.0
    assert score(seed_signals(**dict.fromkeys(QUALITY, 0.4), **small), NP) == 0.0  # small but not good
    big = {"follower_count": 2_000_000, "viewer_count": 500, "peak_viewers": 60, "avg_viewers": 30}
    assert score(seed_signals(**good, **big), NP) == 0.0  # good but not small
    viral = {**small, "viewer_count": 5_000_000}
    assert score(seed_signals(**good, **viral), NP) == 0.0  # a viral hit is not a niche


@PROPERTY
@given(signals(), st.sampled_from(["consistency_score", "historical_performance"]), unit)
def test_loyalty_grows_with_consistency_and_history(s: CreatorSignals, name: str, more: float) -> None:
    higher = dataclasses.replace(s, **{name: max(getattr(s, name), more)})
    assert score(higher, LR) >= score(s, LR) - 1e-12


def test_loyalty_saturates() -> None:
    base = seed_signals(consistency_score=0.9, historical_performance=0.9)
    scores = [score(dataclasses.replace(base, creator_experience_months=m), LR) for m in (0, 6, 24, 60, 120, 1200)]
    assert scores == sorted(scores) and scores[0] == 0
    assert scores[-1] <= 0.9 + 1e-12 and scores[-1] - scores[-2] < 0.01


@PROPERTY
@given(signals(), count)
def test_peak_performance_rewards_peaks(s: CreatorSignals, extra: int) -> None:
    higher_peak = dataclasses.replace(s, peak_viewers=s.peak_viewers + extra)
    assert score(higher_peak, PP) >= score(s, PP) - 1e-12
    flatter = dataclasses.replace(s, avg_viewers=s.peak_viewers)
    assert score(flatter, PP) <= score(s, PP) + 1e-12


def test_peak_performance_is_not_just_long_streams() -> None:
    spiky = seed_signals(peak_viewers=40_000, avg_viewers=10_000)
    flat = seed_signals(peak_viewers=10_000, avg_viewers=10_000)
    lengths = (60, 120, 600, 6000)
    assert len({score(dataclasses.replace(flat, live_duration_minutes=m), PP) for m in lengths}) == 1
    assert len({score(dataclasses.replace(spiky, live_duration_minutes=m), PP) for m in lengths}) == 1
    assert score(spiky, PP) > score(flat, PP) + 0.5
    # a spike in a two-minute stream is mostly noise
    assert score(dataclasses.replace(spiky, live_duration_minutes=2), PP) < 0.1 * score(spiky, PP)


def test_geographic_fairness_favours_under_represented_regions() -> None:
    context = Context({"US": 60, "BR": 30, "KE": 10}, {})
    s = {r: score(seed_signals(region=r), GF, context) for r in ("US", "BR", "KE")}
    assert s["KE"] > s["BR"] > s["US"]
    assert s["KE"] > 0.5 > s["US"]
    # equal regions are treated equally, and an average-sized region is neutral
    even = Context({"US": 1, "BR": 1}, {})
    assert score(seed_signals(region="US"), GF, even) == score(seed_signals(region="BR"), GF, even) == 0.5
    # unknown: no region, a region not in the population, or no population information
    for region, ctx in (("", context), ("ZZ", context), ("KE", Context.neutral()), ("KE", None)):
        a = ENGINE.assess("c", seed_signals(region=region), ctx).contribution(GF)
        assert a.score == 0.5 and "neutral" in a.explanation


def test_small_regions_are_not_crushed_by_their_size() -> None:
    """A region's total is its size times its creators' average: the engine keeps the
    average of a small region's creators at least that of a big region's (same creators)."""
    creators = [s for _, s in simulate(300, 5)]
    big = [dataclasses.replace(s, region="US") for s in creators[:270]]
    small = [dataclasses.replace(s, region="KE") for s in creators[:30]]
    population = big + small
    scores = ENGINE.scores(population, Context.from_population(population))
    assert scores[270:].mean() > scores[:30].mean()  # the same 30 creators score higher in the small region


def test_content_diversity_favours_rarer_categories() -> None:
    context = Context({}, {"gaming": 50, "music": 30, "crafts": 5, "education": 15})
    s = {c: score(seed_signals(content_category=c), CD, context) for c in context.category_shares}
    assert s["crafts"] > s["education"] > s["music"] > s["gaming"]
    a = ENGINE.assess("c", seed_signals(content_category=""), context).contribution(CD)
    assert a.score == 0.5 and "neutral" in a.explanation


def test_context_from_population_and_validation() -> None:
    population = [seed_signals(region=r, content_category=c) for r, c in (("US", "gaming"), ("US", ""), ("BR", "a"))]
    ctx = Context.from_population(population)
    assert dict(ctx.region_shares) == pytest.approx({"BR": 1 / 3, "US": 2 / 3})
    assert dict(ctx.category_shares) == pytest.approx({"a": 0.5, "gaming": 0.5})
    assert Context({" us ": 2, "BR": 2}, {"Gaming": 1}).region_shares == {"BR": 0.5, "US": 0.5}
    with pytest.raises(InvalidArgument) as info:
        Context({"US": -1}, {})
    assert info.value.field == "region_shares"
    assert Context.neutral() == Context({}, {})


# --- vectorised == scalar ---------------------------------------------------------------------


@PROPERTY
@given(st.lists(signals(), min_size=1, max_size=12), st.booleans())
def test_vectorised_equals_scalar(population: list[CreatorSignals], with_context: bool) -> None:
    context = Context.from_population(population) if with_context else None
    matrix = ENGINE.principle_scores(population, context)
    totals = ENGINE.scores(population, context)
    assert matrix.shape == (len(population), 8) and totals.shape == (len(population),)
    for i, s in enumerate(population):
        a: Assessment = ENGINE.assess(f"c{i}", s, context)
        assert np.allclose(matrix[i], [c.score for c in a.contributions], rtol=0, atol=1e-9)
        assert abs(totals[i] - a.total_score) <= 1e-9


def test_vectorised_on_a_simulated_population() -> None:
    population = [s for _, s in simulate(500, 9)]
    context = Context.from_population(population)
    totals = ENGINE.scores(population, context)
    for i in range(0, 500, 37):
        assert totals[i] == pytest.approx(ENGINE.assess("c", population[i], context).total_score, abs=1e-9)
    assert ENGINE.scores([], context).shape == (0,)
    assert ENGINE.principle_scores([], context).shape == (0, 8)


def test_version_identifies_the_configuration() -> None:
    assert ENGINE.version == FairnessEngine().version
    assert ENGINE.version != FairnessEngine(min_share=0.3).version
    assert ENGINE.version != FairnessEngine(Weights.default().without(PP)).version
