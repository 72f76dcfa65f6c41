"""Fairness report: the engine against a proportional-to-views baseline on a
simulated population (:mod:`creatormesh.allocation.population`).

Both split the same budget with :func:`creatormesh.allocation.pool.split` — the engine
in proportion to the fairness score (context: the population itself), the baseline
in proportion to ``viewer_count``. Measured: the Gini coefficient of the payouts,
the budget shares of newcomers, niche creators and the top 1 % of earners, the
budget per region, and the effect of each principle (its weight set to 0, the others
renormalised to 100, everything re-run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from creatormesh.allocation.fairness import PRINCIPLES, Context, FairnessEngine, Principle, Weights
from creatormesh.allocation.pool import members, split
from creatormesh.allocation.population import is_newcomer, is_niche, simulate
from creatormesh.allocation.signals import CreatorSignals

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def gini(amounts: Sequence[float] | FloatArray) -> float:
    """Gini coefficient of non-negative amounts: 0 = all equal, (n−1)/n = one takes all."""
    x = np.sort(np.asarray(amounts, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))


def lorenz(amounts: Sequence[float] | FloatArray) -> tuple[FloatArray, FloatArray]:
    """Lorenz curve: (cumulative population share, cumulative payout share), from (0, 0)."""
    x = np.sort(np.asarray(amounts, dtype=np.float64))
    n, total = len(x), float(x.sum()) or 1.0
    people = np.arange(n + 1, dtype=np.float64) / max(n, 1)
    paid = np.concatenate([[0.0], np.cumsum(x) / total])
    return people, paid


def top_share(amounts: FloatArray, fraction: float = 0.01) -> float:
    """Share of the total paid to the top ``fraction`` of earners (at least one)."""
    total = float(amounts.sum())
    if total <= 0 or len(amounts) == 0:
        return 0.0
    k = max(1, math.ceil(len(amounts) * fraction))
    return float(np.sort(amounts)[-k:].sum() / total)


@dataclass(frozen=True)
class Outcome:
    """One policy's payouts and their fairness metrics (shares are of the budget, 0–1)."""

    name: str
    amounts: FloatArray
    gini: float
    newcomer_share: float
    niche_share: float
    top1_share: float


@dataclass(frozen=True)
class PrincipleEffect:
    """The engine re-run without one principle: metrics without it and ``Δ = without − with``."""

    principle: Principle
    weight: float
    gini: float
    newcomer_share: float
    niche_share: float
    delta_gini: float
    delta_newcomer: float
    delta_niche: float


@dataclass(frozen=True)
class RegionRow:
    """A region's share of the creators and of the budget under each policy."""

    region: str
    creators: float
    engine: float
    baseline: float


@dataclass(frozen=True)
class FairnessReport:
    n: int
    seed: int
    budget_cents: int
    newcomer_population_share: float
    niche_population_share: float
    engine: Outcome
    baseline: Outcome
    effects: tuple[PrincipleEffect, ...]
    regions: tuple[RegionRow, ...]

    def table(self) -> str:
        """The report as markdown tables."""
        pct = _pct
        lines = [
            f"Simulated population: {self.n:,} creators (seed {self.seed}), budget "
            f"${self.budget_cents / 100:,.2f}; newcomers (< 6 months) {pct(self.newcomer_population_share)} "
            f"of creators, niche (established, quality ≥ 0.75, < 20,000 followers) "
            f"{pct(self.niche_population_share)}.",
            "",
            "| metric | engine | proportional to views | population |",
            "|---|---:|---:|---:|",
            f"| Gini coefficient of payouts | {self.engine.gini:.3f} | {self.baseline.gini:.3f} | 0 = equal |",
            f"| newcomers' share of the budget | {pct(self.engine.newcomer_share)} | "
            f"{pct(self.baseline.newcomer_share)} | {pct(self.newcomer_population_share)} |",
            f"| niche creators' share | {pct(self.engine.niche_share)} | {pct(self.baseline.niche_share)} | "
            f"{pct(self.niche_population_share)} |",
            f"| top 1 % of earners' share | {pct(self.engine.top1_share)} | {pct(self.baseline.top1_share)} | 1.0 % |",
            "",
            "Effect of each principle: the engine re-run with its weight set to 0 and the others "
            "renormalised to 100; Δ = without − with (pp = percentage points).",
            "",
            "| principle | weight | Gini without | Δ Gini | newcomers without | Δ newcomers "
            "| niche without | Δ niche |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for e in self.effects:
            lines.append(
                f"| {e.principle.label} | {e.weight:g} | {e.gini:.3f} | {e.delta_gini:+.3f} | "
                f"{pct(e.newcomer_share)} | {e.delta_newcomer * 100:+.2f} pp | {pct(e.niche_share)} | "
                f"{e.delta_niche * 100:+.2f} pp |"
            )
        lines += [
            "",
            "Budget by region (geographic fairness): share of creators and of the budget.",
            "",
            "| region | creators | engine | proportional to views |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {r.region} | {pct(r.creators)} | {pct(r.engine)} | {pct(r.baseline)} |" for r in self.regions]
        return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _outcome(name: str, amounts: FloatArray, newcomer: BoolArray, niche: BoolArray, budget: int) -> Outcome:
    total = float(budget) or 1.0
    return Outcome(
        name,
        amounts,
        gini(amounts),
        float(amounts[newcomer].sum() / total),
        float(amounts[niche].sum() / total),
        top_share(amounts),
    )


def _pay(budget: int, ids: list[str], weights: FloatArray) -> FloatArray:
    return np.array([p.amount_cents for p in split(budget, members(ids, weights))], dtype=np.float64)


def run(n: int = 5000, seed: int = 7, budget_cents: int = 10_000_000, plot: Path | None = None) -> FairnessReport:
    """Simulate ``n`` creators, split ``budget_cents`` by the engine and by views, compare;
    save the plot to ``plot`` if given."""
    population = simulate(n, seed)
    ids = [cid for cid, _ in population]
    signals: list[CreatorSignals] = [s for _, s in population]
    newcomer = np.array([is_newcomer(s) for s in signals], dtype=bool)
    niche = np.array([is_niche(s) for s in signals], dtype=bool)
    context = Context.from_population(signals)

    weights = Weights.default()
    engine_scores = FairnessEngine(weights).scores(signals, context)
    engine = _outcome("engine", _pay(budget_cents, ids, engine_scores), newcomer, niche, budget_cents)
    views = np.array([s.viewer_count for s in signals], dtype=np.float64)
    baseline = _outcome("proportional to views", _pay(budget_cents, ids, views), newcomer, niche, budget_cents)

    effects = []
    for p in PRINCIPLES:
        if weights.values[p] <= 0:
            continue
        scores = FairnessEngine(weights.without(p)).scores(signals, context)
        o = _outcome(p.key, _pay(budget_cents, ids, scores), newcomer, niche, budget_cents)
        effects.append(
            PrincipleEffect(
                p,
                weights.values[p],
                o.gini,
                o.newcomer_share,
                o.niche_share,
                o.gini - engine.gini,
                o.newcomer_share - engine.newcomer_share,
                o.niche_share - engine.niche_share,
            )
        )

    regions = []
    region_of = np.array([s.region or "?" for s in signals])
    total = float(budget_cents) or 1.0
    for region in sorted(set(region_of.tolist()), key=lambda r: (-int((region_of == r).sum()), r)):
        mask = region_of == region
        regions.append(
            RegionRow(
                region,
                float(mask.mean()) if n else 0.0,
                float(engine.amounts[mask].sum() / total),
                float(baseline.amounts[mask].sum() / total),
            )
        )

    report = FairnessReport(
        n,
        seed,
        budget_cents,
        float(newcomer.mean()) if n else 0.0,
        float(niche.mean()) if n else 0.0,
        engine,
        baseline,
        tuple(effects),
        tuple(regions),
    )
    if plot is not None:
        save_plot(report, plot)
    return report


def save_plot(report: FairnessReport, path: Path) -> None:
    """Lorenz curves (engine vs baseline) and group shares, as a PNG (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="equal split")
    for outcome, colour in ((report.engine, "tab:blue"), (report.baseline, "tab:orange")):
        people, paid = lorenz(outcome.amounts)
        left.plot(people, paid, color=colour, label=f"{outcome.name} (Gini {outcome.gini:.2f})")
    left.set_title("Lorenz curves of payouts")
    left.set_xlabel("share of creators (poorest first)")
    left.set_ylabel("share of the budget")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.grid(alpha=0.3)
    left.legend(loc="upper left")

    groups = ["newcomers", "niche creators", "top 1 % earners"]
    population = [report.newcomer_population_share, report.niche_population_share, 0.01]
    engine = [report.engine.newcomer_share, report.engine.niche_share, report.engine.top1_share]
    baseline = [report.baseline.newcomer_share, report.baseline.niche_share, report.baseline.top1_share]
    x = np.arange(len(groups))
    width = 0.27
    for offset, values, label, colour in (
        (-width, population, "share of creators", "0.7"),
        (0.0, engine, "engine", "tab:blue"),
        (width, baseline, "proportional to views", "tab:orange"),
    ):
        bars = right.bar(x + offset, [v * 100 for v in values], width, label=label, color=colour)
        right.bar_label(bars, labels=[f"{v * 100:.1f}" for v in values], fontsize=8, padding=2)
    right.set_xticks(x, groups)
    right.set_ylabel("% of the budget (grey: % of creators)")
    right.set_title("Budget share by group")
    right.grid(axis="y", alpha=0.3)
    right.legend(loc="upper left")
    fig.suptitle(
        f"Fairness engine vs proportional to views — {report.n:,} simulated creators, seed {report.seed}",
        fontsize=12,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
