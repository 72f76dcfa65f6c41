"""The commands: score a CSV with whichever columns it has, export the weighted LM set, compare A/B arms."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creatormesh.viral_scoring.cli import app

runner = CliRunner()
MINIMAL = "video_id,title,tags,channel_title,category_id\n"


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_csv_with_only_the_required_columns(trained_model: Path, tmp_path: Path) -> None:
    src = write(
        tmp_path / "min.csv",
        MINIMAL,
        ['a1,I tried the viral pasta,"pasta|""recipe""",Chef Kim,26', "a2,Free crypto giveaway scam,[none],X,28"],
    )
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score-csv", str(src), "--out", str(out), "--model-dir", str(trained_model)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["video_id"] for r in rows] == ["a1", "a2"]
    assert 0 < float(rows[0]["v"]) < 1 and all(0 <= float(rows[0][k]) <= 1 for k in "EHRST")
    assert rows[1]["blocked"] == "true" and float(rows[1]["v"]) == 0 and "giveaway scam" in rows[1]["reasons"]


def test_score_csv_uses_optional_columns_and_names_a_bad_value(trained_model: Path, tmp_path: Path) -> None:
    header = (
        "video_id,title,tags,channel_title,category_id,publish_time,description,likes,comment_count,watch_through\n"
    )
    src = write(
        tmp_path / "full.csv", header, ["b1,Dog skateboards,dogs,Pets,15,2017-11-13T17:00:00.000Z,fun,5000,300,0.6"]
    )
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score-csv", str(src), "--out", str(out), "--model-dir", str(trained_model)])
    assert result.exit_code == 0, result.output
    bad = write(tmp_path / "bad.csv", header, ["b1,t,x,c,15,,d,many,1,0.5"])
    result = runner.invoke(app, ["score-csv", str(bad), "--out", str(out), "--model-dir", str(trained_model)])
    assert result.exit_code != 0 and "line 2: likes must be a number" in result.output
    missing = write(tmp_path / "missing.csv", "video_id,title\n", ["c1,t"])
    result = runner.invoke(app, ["score-csv", str(missing), "--model-dir", str(trained_model)])
    assert result.exit_code != 0 and "missing column" in result.output


def test_export_lm_set_weights_by_virality(trained_model: Path, tmp_path: Path) -> None:
    titles = ["How I built a tiny house in 24 hours", "notes", "Wait for the ending!!", "Free giveaway scam"]
    src = write(tmp_path / "posts.csv", MINIMAL, [f"p{i},{t},[none],c{i},24" for i, t in enumerate(titles)])
    out = tmp_path / "lm.jsonl"
    args = ["export-lm-set", str(src), "--out", str(out), "--lambda", "2", "--model-dir", str(trained_model)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and "Free giveaway scam" not in {r["text"] for r in rows}  # blocked texts are not taught
    for r in rows:
        assert r["weight"] == pytest.approx(1 + 2 * r["v"])
    assert [r["v"] for r in rows] == sorted((r["v"] for r in rows), reverse=True)


def test_ab_report_compares_arms_from_a_log(tmp_path: Path) -> None:
    rng = random.Random(3)
    log = tmp_path / "log.jsonl"
    with log.open("w") as handle:
        for arm, complete in (("control", 0.3), ("viral", 0.45)):
            for item in range(150):
                for user in range(20):
                    base = {"arm": arm, "user_id": f"u{user}", "item_id": f"{arm}-{item}", "occurred_at": 1.0}
                    handle.write(json.dumps({**base, "type": "view"}) + "\n")
                    if rng.random() < complete:
                        handle.write(json.dumps({**base, "type": "complete", "watch_fraction": 1.0}) + "\n")
    result = runner.invoke(app, ["ab-report", "--log", str(log), "--arm-a", "control", "--arm-b", "viral"])
    assert result.exit_code == 0, result.output
    cells = next(row for row in result.output.splitlines() if row.startswith("watch_through")).split()
    assert cells[-1] == "yes" and float(cells[4]) > float(cells[3]), result.output  # significant, B above A
    plays = next(row for row in result.output.splitlines() if row.startswith("plays_per_item")).split()
    assert plays[-1] == "no", result.output  # both arms got 20 views per item


def test_evaluate_reruns_the_held_out_table_of_a_checkpoint(trained_model: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--model-dir", str(trained_model)])
    assert result.exit_code == 0, result.output
    stored = json.loads((trained_model / "metadata.json").read_text())["evaluation"]["settings"]
    line = next(row for row in result.output.split("with_behaviour")[1].splitlines() if "full model " in row)
    mse, spearman = (float(x) for x in line.split()[2:4])
    assert mse == pytest.approx(stored["with_behaviour"]["full model"]["mse"], abs=1e-4)
    assert spearman == pytest.approx(stored["with_behaviour"]["full model"]["spearman"], abs=1e-3)
