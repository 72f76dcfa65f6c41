from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from creatormesh.viral_scoring.abtest import (
    KPIS,
    InteractionRecord,
    compare,
    format_table,
    main,
    read_interactions,
    unit_metrics,
)

T0 = 1_700_000_000.0


def synthetic_log(seed: int, p_complete: dict[str, float], items: int = 300) -> list[InteractionRecord]:
    """Per arm, `items` items with Poisson(20) views; each view completes / is shared / replayed / clicked."""
    rng = np.random.default_rng(seed)
    records: list[InteractionRecord] = []
    for arm, p in p_complete.items():
        for i in range(items):
            item = f"{arm}-item{i}"
            for v in range(int(rng.poisson(20)) + 1):
                user = f"u{rng.integers(0, 5000)}"
                fraction = float(rng.uniform(0.9, 1.0) if rng.random() < p else rng.uniform(0.0, 0.9))
                at = T0 + i + v * 60.0
                records.append(InteractionRecord(arm, user, item, "view", fraction, at))
                for kind, prob in (("complete", p), ("share", 0.05), ("replay", 0.1), ("click", 0.02)):
                    if rng.random() < prob:
                        records.append(InteractionRecord(arm, user, item, kind, fraction, at + 1.0))
    return records


def test_real_watch_through_lift_is_significant() -> None:
    records = synthetic_log(seed=1, p_complete={"A": 0.30, "B": 0.36})
    assert len(records) > 10_000
    rows = {r.kpi: r for r in compare(records, "A", "B", seed=3)}
    assert [r for r in rows] == list(KPIS)
    wtr = rows["watch_through_rate"]
    assert wtr.significant
    assert wtr.diff > 0
    assert 0 < wtr.ci_low < wtr.diff < wtr.ci_high
    assert wtr.t_stat > 0
    assert wtr.p_value < 0.001
    assert wtr.n_a == wtr.n_b == 300
    assert wtr.relative_lift == pytest.approx(wtr.diff / wtr.mean_a)
    assert 0.05 < wtr.diff < 0.07  # the true lift is 0.06


def test_lift_in_the_other_direction_has_the_other_sign() -> None:
    records = synthetic_log(seed=2, p_complete={"A": 0.36, "B": 0.30})
    wtr = {r.kpi: r for r in compare(records, "A", "B", seed=0)}["watch_through_rate"]
    assert wtr.significant
    assert wtr.ci_high < 0
    assert wtr.t_stat < 0


def test_a_a_test_is_not_significant() -> None:
    records = synthetic_log(seed=13, p_complete={"A": 0.33, "B": 0.33})  # every KPI has p > 0.4 with this seed
    for row in compare(records, "A", "B", seed=0):
        assert not row.significant, row
        assert row.ci_low < 0 < row.ci_high, row
        assert row.p_value > 0.2, row


def test_bootstrap_ci_matches_normal_theory() -> None:
    records = synthetic_log(seed=11, p_complete={"A": 0.30, "B": 0.33}, items=400)
    metrics = unit_metrics(records)
    a, b = metrics["A"]["watch_through_rate"], metrics["B"]["watch_through_rate"]
    diff = b.mean() - a.mean()
    half = 1.959964 * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    row = {r.kpi: r for r in compare(records, "A", "B", n_boot=4000, seed=5)}["watch_through_rate"]
    assert row.diff == pytest.approx(diff)
    assert row.ci_low == pytest.approx(diff - half, abs=0.1 * half)
    assert row.ci_high == pytest.approx(diff + half, abs=0.1 * half)
    wider = {r.kpi: r for r in compare(records, "A", "B", n_boot=4000, confidence=0.99, seed=5)}["watch_through_rate"]
    assert wider.ci_low < row.ci_low < row.ci_high < wider.ci_high


def test_compare_is_reproducible_with_a_seed() -> None:
    records = synthetic_log(seed=3, p_complete={"A": 0.3, "B": 0.3}, items=50)
    assert compare(records, "A", "B", seed=4) == compare(records, "A", "B", seed=4)
    assert compare(records, "A", "B", seed=4) != compare(records, "A", "B", seed=5)


def test_unit_metrics_per_item_and_day_one_window() -> None:
    records = [
        InteractionRecord("A", "u1", "i1", "view", 1.0, T0),
        InteractionRecord("A", "u1", "i1", "complete", 1.0, T0 + 5),
        InteractionRecord("A", "u2", "i1", "view", 0.2, T0 + 3600),
        InteractionRecord("A", "u2", "i1", "share", 0.2, T0 + 3601),
        InteractionRecord("A", "u3", "i1", "view", 1.0, T0 + 2 * 86_400),  # after day 1
        InteractionRecord("A", "u3", "i1", "replay", 1.0, T0 + 2 * 86_400),
        InteractionRecord("A", "u4", "i2", "click"),  # no views, untimed
        InteractionRecord("B", "u1", "i3", "view"),
        InteractionRecord("B", "u2", "i3", "view"),
        InteractionRecord("B", "u2", "i3", "click"),
    ]
    m = unit_metrics(records)
    assert list(m["A"]["plays_per_item"]) == [2.0, 0.0]
    assert list(m["A"]["watch_through_rate"]) == pytest.approx([1 / 3])  # i2 has no views: skipped
    assert list(m["A"]["share_rate"]) == pytest.approx([1 / 3])
    assert list(m["A"]["rewatch_rate"]) == pytest.approx([1 / 3])
    assert list(m["A"]["conversion_rate"]) == [0.0]
    assert list(m["B"]["plays_per_item"]) == [2.0]
    assert list(m["B"]["conversion_rate"]) == [0.5]
    users = unit_metrics(records, unit="user")
    assert len(users["A"]["plays_per_item"]) == 4
    assert list(users["B"]["conversion_rate"]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="unit"):
        unit_metrics(records, unit="session")


def test_unknown_arm_and_empty_arm_are_errors() -> None:
    records = synthetic_log(seed=3, p_complete={"A": 0.3, "B": 0.3}, items=20)
    with pytest.raises(ValueError, match=r"unknown arm 'C'.*A, B"):
        compare(records, "A", "C")
    with pytest.raises(ValueError, match="different arms"):
        compare(records, "A", "A")
    clicks_only = [*records, InteractionRecord("C", "u1", "x", "click"), InteractionRecord("C", "u2", "y", "click")]
    with pytest.raises(ValueError, match=r"arm 'C' has 0 item\(s\)"):
        compare(clicks_only, "A", "C")


def _write_csv(path: Path, records: list[InteractionRecord]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(records[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)


def test_csv_and_jsonl_round_trip(tmp_path: Path) -> None:
    records = synthetic_log(seed=5, p_complete={"A": 0.3, "B": 0.4}, items=10)
    _write_csv(tmp_path / "log.csv", records)
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in records), encoding="utf-8")
    assert read_interactions(tmp_path / "log.csv") == records
    assert read_interactions(tmp_path / "log.jsonl") == records


def test_optional_fields_default(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("arm,user_id,item_id,type,watch_fraction\nA,u1,i1,view,\n", encoding="utf-8")
    assert read_interactions(path) == [InteractionRecord("A", "u1", "i1", "view", 0.0, 0.0)]


@pytest.mark.parametrize(
    ("name", "text", "where", "field"),
    [
        ("bad.csv", "arm,user_id,item_id,type,watch_fraction\nA,u,i,view,0.5\nA,u,i,view,abc\n",
         "line 3", "watch_fraction"),
        ("bad.csv", "arm,user_id,item_id,type\nA,u,i,view\nB,u,i,watch\n", "line 3", "type"),
        ("bad.csv", "arm,user_id,item_id,type,watch_fraction\nA,u,i,view,1.5\n", "line 2", "watch_fraction"),
        ("bad.jsonl", '{"arm": "A", "user_id": "u", "item_id": "i", "type": "view"}\n{"arm": "A", "user_id": "u"}\n',
         "line 2", "item_id"),
        ("bad.jsonl", '{"arm": "A", "user_id": "u", "item_id": "i", "type": "view", "occurred_at": "soon"}\n',
         "line 1", "occurred_at"),
    ],
)  # fmt: skip
def test_bad_row_names_line_and_field(tmp_path: Path, name: str, text: str, where: str, field: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{name} {where}: field '{field}'"):
        read_interactions(path)


def test_bad_json_and_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"arm": "A", "user_id": "u", "item_id": "i", "type": "view"}\n{not json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_interactions(path)
    with pytest.raises(ValueError, match="unsupported file type"):
        read_interactions(tmp_path / "log.parquet")


def test_format_table_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = synthetic_log(seed=1, p_complete={"A": 0.30, "B": 0.36}, items=100)
    table = format_table(compare(records, "A", "B", n_boot=500))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["kpi", "n_a", "n_b"]
    assert [line.split()[0] for line in lines[1:]] == list(KPIS)
    _write_csv(tmp_path / "log.csv", records)
    assert main([str(tmp_path / "log.csv"), "--arm-a", "A", "--arm-b", "B", "--n-boot", "500"]) == 0
    assert capsys.readouterr().out.strip() == table
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "log.csv"), "--arm-a", "A", "--arm-b", "Z"])
    assert exit_info.value.code == 2
    assert "unknown arm 'Z'" in capsys.readouterr().err
