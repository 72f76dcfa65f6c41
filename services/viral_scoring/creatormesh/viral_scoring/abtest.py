"""A/B analysis of logged interactions (seed section 7): per-KPI bootstrap CI and Welch's t-test.

Run: python -m creatormesh.viral_scoring.abtest LOG.{csv,jsonl} --arm-a A --arm-b B [--unit item|user]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

KPIS: tuple[str, ...] = ("plays_per_item", "watch_through_rate", "share_rate", "rewatch_rate", "conversion_rate")
TYPES = frozenset({"view", "like", "share", "comment", "skip", "complete", "replay", "follow", "click"})
UNITS = ("item", "user")
DAY = 86_400.0
_RATE_EVENT = {
    "watch_through_rate": "complete",
    "share_rate": "share",
    "rewatch_rate": "replay",
    "conversion_rate": "click",
}


@dataclass(frozen=True)
class InteractionRecord:
    arm: str
    user_id: str
    item_id: str
    type: str  # one of TYPES
    watch_fraction: float = 0.0
    occurred_at: float = 0.0  # unix seconds; 0 = unknown


def read_interactions(path: Path) -> list[InteractionRecord]:
    """Records from a CSV (with a header) or JSONL file; ValueError naming the line and field of a bad row."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in {".jsonl", ".ndjson"}:
        rows = _jsonl_rows(path)
    else:
        raise ValueError(f"{path.name}: unsupported file type {suffix!r} (use .csv or .jsonl)")
    return [_record(row, f"{path.name} line {line}") for line, row in rows]


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {line}: not valid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path.name} line {line}: expected a JSON object")
            yield line, row


def _record(row: Mapping[str, Any], where: str) -> InteractionRecord:
    text: dict[str, str] = {}
    for name in ("arm", "user_id", "item_id", "type"):
        value = row.get(name)
        if value is None or str(value).strip() == "":
            raise ValueError(f"{where}: field {name!r} is missing or empty")
        text[name] = str(value).strip()
    if text["type"] not in TYPES:
        raise ValueError(f"{where}: field 'type' must be one of {', '.join(sorted(TYPES))}, got {text['type']!r}")
    fraction = _number(row.get("watch_fraction"), "watch_fraction", where)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{where}: field 'watch_fraction' must be in [0, 1], got {fraction}")
    occurred = _number(row.get("occurred_at"), "occurred_at", where)
    if occurred < 0:
        raise ValueError(f"{where}: field 'occurred_at' must be >= 0, got {occurred}")
    return InteractionRecord(text["arm"], text["user_id"], text["item_id"], text["type"], fraction, occurred)


def _number(value: Any, name: str, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0.0
    if isinstance(value, bool):
        raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: field {name!r} must be finite, got {value!r}")
    return number


def unit_metrics(records: Sequence[InteractionRecord], unit: str = "item") -> dict[str, dict[str, np.ndarray]]:
    """Per arm, per KPI: one value per unit (item or user), units in sorted order.

    plays_per_item counts views in the first 24 h after the item's first timed event (all views when untimed);
    the rates are events / views over all of a unit's records, and skip units without views.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    first: dict[str, float] = {}
    for r in records:
        if r.occurred_at > 0:
            first[r.item_id] = min(first.get(r.item_id, r.occurred_at), r.occurred_at)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for r in records:
        per_unit = counts.setdefault(r.arm, {}).setdefault(r.item_id if unit == "item" else r.user_id, {})
        per_unit[r.type] = per_unit.get(r.type, 0) + 1
        in_day_one = r.occurred_at <= 0 or r.item_id not in first or r.occurred_at <= first[r.item_id] + DAY
        if r.type == "view" and in_day_one:
            per_unit["day1_view"] = per_unit.get("day1_view", 0) + 1
    result: dict[str, dict[str, np.ndarray]] = {}
    for arm, units in sorted(counts.items()):
        ordered = [units[key] for key in sorted(units)]
        kpis = {"plays_per_item": np.array([c.get("day1_view", 0) for c in ordered], dtype=float)}
        viewed = [c for c in ordered if c.get("view", 0) > 0]
        for kpi, event in _RATE_EVENT.items():
            kpis[kpi] = np.array([c.get(event, 0) / c["view"] for c in viewed], dtype=float)
        result[arm] = kpis
    return result


@dataclass(frozen=True)
class KpiComparison:
    kpi: str
    arm_a: str
    arm_b: str
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    diff: float  # mean_b - mean_a
    ci_low: float  # bootstrap percentile CI of diff
    ci_high: float
    relative_lift: float  # diff / mean_a, nan when mean_a == 0
    t_stat: float  # Welch's t-test of b against a
    p_value: float
    significant: bool  # p < alpha and the CI excludes 0


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n_boot means of resamples with replacement; indices drawn in blocks of whole resamples, not per resample."""
    n = len(values)
    block = max(1, 4_000_000 // n)
    parts = [values[rng.integers(0, n, size=(min(block, n_boot - s), n))].mean(axis=1) for s in range(0, n_boot, block)]
    return np.concatenate(parts)


def compare(
    records: Sequence[InteractionRecord],
    arm_a: str,
    arm_b: str,
    *,
    unit: str = "item",
    n_boot: int = 2000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[KpiComparison]:
    """One comparison per KPI of arm_b against arm_a (the baseline)."""
    if arm_a == arm_b:
        raise ValueError(f"compare two different arms, got {arm_a!r} twice")
    if not 0.0 < confidence < 1.0 or not 0.0 < alpha < 1.0 or n_boot < 1:
        raise ValueError("confidence and alpha must be in (0, 1) and n_boot >= 1")
    metrics = unit_metrics(records, unit)
    for arm in (arm_a, arm_b):
        if arm not in metrics:
            known = ", ".join(sorted(metrics)) or "none"
            raise ValueError(f"unknown arm {arm!r}: the log has arms {known}")
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows: list[KpiComparison] = []
    for kpi in KPIS:
        a, b = metrics[arm_a][kpi], metrics[arm_b][kpi]
        for arm, values in ((arm_a, a), (arm_b, b)):
            if len(values) < 2:
                raise ValueError(f"arm {arm!r} has {len(values)} {unit}(s) with data for {kpi}; need at least 2")
        diffs = bootstrap_means(b, n_boot, rng) - bootstrap_means(a, n_boot, rng)
        low, high = (float(q) for q in np.quantile(diffs, [tail, 1.0 - tail]))
        test = stats.ttest_ind(b, a, equal_var=False)
        t_stat, p_value = float(test.statistic), float(test.pvalue)
        mean_a, mean_b = float(a.mean()), float(b.mean())
        diff = mean_b - mean_a
        rows.append(
            KpiComparison(
                kpi=kpi,
                arm_a=arm_a,
                arm_b=arm_b,
                mean_a=mean_a,
                mean_b=mean_b,
                n_a=len(a),
                n_b=len(b),
                diff=diff,
                ci_low=low,
                ci_high=high,
                relative_lift=diff / mean_a if mean_a != 0 else math.nan,
                t_stat=t_stat,
                p_value=p_value,
                significant=bool(p_value < alpha and (low > 0 or high < 0)),
            )
        )
    return rows


def format_table(rows: Sequence[KpiComparison]) -> str:
    """A plain-text table, one line per KPI."""
    header = ("kpi", "n_a", "n_b", "mean_a", "mean_b", "diff", "ci", "lift", "t", "p", "sig")
    lines = [header]
    for r in rows:
        lift = "n/a" if math.isnan(r.relative_lift) else f"{r.relative_lift:+.1%}"
        ci = f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
        cells = (r.kpi, str(r.n_a), str(r.n_b), f"{r.mean_a:.4f}", f"{r.mean_b:.4f}", f"{r.diff:+.4f}", ci, lift)
        lines.append((*cells, f"{r.t_stat:.2f}", f"{r.p_value:.4f}", "yes" if r.significant else "no"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare two arms' KPIs from an interaction log.")
    parser.add_argument("log", type=Path, help="interactions as .csv or .jsonl")
    parser.add_argument("--arm-a", required=True, help="baseline arm")
    parser.add_argument("--arm-b", required=True, help="treatment arm")
    parser.add_argument("--unit", choices=UNITS, default="item")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rows = compare(
            read_interactions(args.log),
            args.arm_a,
            args.arm_b,
            unit=args.unit,
            n_boot=args.n_boot,
            confidence=args.confidence,
            alpha=args.alpha,
            seed=args.seed,
        )
    except (OSError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
