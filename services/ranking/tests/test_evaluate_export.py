"""The evaluation table, the top-K CSV export and the typer commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creatormesh.ranking.cli import app
from creatormesh.ranking.data import DEFAULT_DATA_DIR, load_dataset
from creatormesh.ranking.evaluate import COLUMNS, ROWS, evaluate
from creatormesh.ranking.export import export_recommendations


def test_evaluation_table_has_every_row_and_column(trained_model: Path) -> None:
    table = evaluate(DEFAULT_DATA_DIR, trained_model)
    assert tuple(table.rows) == ROWS
    for name, row in table.rows.items():
        assert tuple(row) == COLUMNS, name
        assert all(0.0 <= v <= 1.0 for v in row.values()), (name, row)
    assert table.users == 40 and table.catalogue == len(load_dataset(max_users=40).items)
    assert table.rows["popularity"]["coverage@10"] < table.rows["blend"]["coverage@10"]
    assert table.details["ease_lambda"] > 0 and table.details["knn_neighbours"] > 0
    text = table.markdown()
    for name in ROWS:
        assert f"| {name} |" in text
    with pytest.raises(ValueError, match="holdout"):
        evaluate(DEFAULT_DATA_DIR, trained_model, holdout=3)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_export_writes_top_k_per_user_in_rank_order(trained_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs.csv"
    rows = export_recommendations(out, trained_model, k=7)
    data = load_dataset(max_users=40)
    assert rows == 7 * len(data.sequences)
    assert out.read_text().splitlines()[0] == "user_id,item_id,rank"
    records = _read(out)
    by_user: dict[str, list[tuple[int, str]]] = {}
    for r in records:
        by_user.setdefault(r["user_id"], []).append((int(r["rank"]), r["item_id"]))
    assert list(by_user) == list(data.sequences)
    for user, ranked in by_user.items():
        assert [rank for rank, _ in ranked] == list(range(1, 8))
        items = [item for _, item in ranked]
        assert len(set(items)) == 7
        assert not set(items) & {r.item_id for r in data.sequences[user]}  # history is excluded


def test_export_for_given_and_unknown_users(trained_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "some.csv"
    assert export_recommendations(out, trained_model, users=["3", "nobody", "3"], k=5) == 10
    records = _read(out)
    assert [r["user_id"] for r in records] == ["3"] * 5 + ["nobody"] * 5
    with pytest.raises(ValueError):
        export_recommendations(out, trained_model, k=0)


def test_cli_train_evaluate_export(trained_model: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    tiny = tmp_path / "tiny"
    result = runner.invoke(
        app, ["train", "--model-dir", str(tiny), "--max-users", "8", "--epochs", "1", "--dim", "8", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tiny / "metadata.json").read_text())["config"]["train"]["seed"] == 3
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tiny)])
    assert result.exit_code == 0, result.output
    assert "| blend |" in result.output and "| EASE |" in result.output
    out = tmp_path / "cli.csv"
    result = runner.invoke(app, ["export", "--out", str(out), "--users", "1,2", "--k", "3", "--model-dir", str(tiny)])
    assert result.exit_code == 0, result.output
    assert len(_read(out)) == 6
    result = runner.invoke(app, ["export", "--out", str(out), "--model-dir", str(tmp_path / "missing")])
    assert result.exit_code != 0
