"""The simulated population and the fairness report: the engine pays newcomers and
niche creators more than a proportional-to-views split, with a lower Gini."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creatormesh.allocation.fairness import PRINCIPLES, Principle
from creatormesh.allocation.population import CATEGORIES, REGIONS, is_newcomer, is_niche, quality, simulate
from creatormesh.allocation.report import FairnessReport, gini, lorenz, run, top_share
from creatormesh.allocation.signals import validate


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> FairnessReport:
    return run(n=2000, seed=7, budget_cents=5_000_000, plot=tmp_path_factory.mktemp("report") / "fairness.png")


# --- population -------------------------------------------------------------------------------


def test_simulation_is_reproducible_and_valid() -> None:
    first = simulate(500, 4)
    assert first == simulate(500, 4)
    assert first != simulate(500, 5)
    assert len({cid for cid, _ in first}) == 500
    for _, s in first:
        assert validate(s.as_dict()) == s  # every field in range, avg <= peak
        assert s.avg_viewers <= s.peak_viewers <= s.viewer_count
    assert simulate(0, 1) == []


def test_simulated_population_is_realistic() -> None:
    signals = [s for _, s in simulate(5000, 7)]
    newcomers = np.mean([is_newcomer(s) for s in signals])
    niche = np.mean([is_niche(s) for s in signals])
    assert 0.12 <= newcomers <= 0.18
    assert 0.08 <= niche <= 0.25
    followers = np.array([s.follower_count for s in signals], dtype=float)
    # heavy tail: the top 1 % hold a large part of all followers, the median is modest
    top = np.sort(followers)[-50:].sum() / followers.sum()
    assert top > 0.25 and np.median(followers) < 50_000 and followers.max() > 2_000_000
    regions = {r: sum(s.region == r for s in signals) for r in REGIONS}
    assert len([r for r, k in regions.items() if k]) == len(REGIONS) >= 5
    assert max(regions.values()) > 4 * min(regions.values())  # unequal sizes
    assert {s.content_category for s in signals} == set(CATEGORIES) and len(CATEGORIES) >= 8
    niche_quality = [quality(s) for s in signals if is_niche(s)]
    assert min(niche_quality) >= 0.75


def test_classification() -> None:
    _, s = simulate(1, 0)[0]
    from dataclasses import replace

    niche = replace(
        s,
        creator_experience_months=24,
        follower_count=3_000,
        content_value=0.9,
        visual_quality=0.9,
        host_performance=0.9,
        overall_rating=0.9,
    )
    assert is_niche(niche) and not is_newcomer(niche)
    assert is_newcomer(replace(niche, creator_experience_months=5))
    assert not is_niche(replace(niche, creator_experience_months=5))  # a newcomer is counted as a newcomer
    assert not is_niche(replace(niche, follower_count=50_000))
    assert not is_niche(replace(niche, content_value=0.3, overall_rating=0.3))


# --- metrics ----------------------------------------------------------------------------------


def test_gini_lorenz_and_top_share() -> None:
    assert gini([5, 5, 5, 5]) == 0
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)
    assert gini([]) == 0 and gini([0, 0]) == 0
    people, paid = lorenz([1, 1, 2])
    assert people.tolist() == [0, 1 / 3, 2 / 3, 1] and paid.tolist() == [0, 0.25, 0.5, 1]
    assert top_share(np.array([1.0] * 99 + [101.0])) == pytest.approx(0.505)


# --- the report -------------------------------------------------------------------------------


def test_engine_is_fairer_than_proportional_to_views(report: FairnessReport) -> None:
    assert report.engine.gini < report.baseline.gini
    assert report.engine.newcomer_share > report.baseline.newcomer_share
    assert report.engine.niche_share > report.baseline.niche_share
    assert report.engine.top1_share < report.baseline.top1_share
    # niche creators get more than their head count, newcomers about theirs
    assert report.engine.niche_share > report.niche_population_share
    assert report.engine.newcomer_share > 0.8 * report.newcomer_population_share
    for outcome in (report.engine, report.baseline):
        assert outcome.amounts.sum() == report.budget_cents


def test_each_principle_has_the_intended_effect(report: FairnessReport) -> None:
    effects = {e.principle: e for e in report.effects}
    assert list(effects) == list(PRINCIPLES)
    assert effects[Principle.NEWBIE_SUPPORT].delta_newcomer < 0  # without it, newcomers get less
    assert effects[Principle.NICHE_PROTECTION].delta_niche < 0  # without it, niche creators get less
    assert effects[Principle.TRAFFIC_CONTRIBUTION].delta_gini > 0  # the big audiences pull away
    for e in report.effects:
        assert e.gini == pytest.approx(report.engine.gini + e.delta_gini)
        assert e.weight > 0


def test_regions_are_treated_alike(report: FairnessReport) -> None:
    assert sum(r.creators for r in report.regions) == pytest.approx(1)
    assert sum(r.engine for r in report.regions) == pytest.approx(1)
    for r in report.regions:
        # the engine pays a region in line with its head count (equal treatment)
        assert r.engine == pytest.approx(r.creators, rel=0.25)


def test_table_and_plot(report: FairnessReport, tmp_path: Path) -> None:
    table = report.table()
    assert "| Gini coefficient of payouts |" in table
    assert "| newcomers' share of the budget |" in table
    assert "| niche creators' share |" in table
    assert "| top 1 % of earners' share |" in table
    for p in PRINCIPLES:
        assert f"| {p.label} |" in table
    plot = tmp_path / "sub" / "plot.png"
    from creatormesh.allocation.report import save_plot

    save_plot(report, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
