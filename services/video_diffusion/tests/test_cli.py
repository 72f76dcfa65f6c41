"""`creatormesh video ...` through typer's CliRunner: build-tiny, local generation and train-lora against a database
and storage in tmp_path (the service's settings come from the environment)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creatormesh.common.storage import LocalStorage
from creatormesh.video_diffusion.cli import app
from creatormesh.video_diffusion.engine import Engine
from creatormesh.video_diffusion.store import JobStore, migrate

from .test_retrain import PROMPTS, add_pick

runner = CliRunner()


def test_build_tiny_and_generate(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build-tiny", str(tmp_path / "model"), "--kind", "cogvideox"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["_class_name"] == "CogVideoXPipeline"
    again = runner.invoke(app, ["build-tiny", str(tmp_path / "model")])
    assert again.exit_code == 2 and "not empty" in again.output
    result = runner.invoke(
        app,
        ["generate", "a blue car", "--model-dir", str(tmp_path / "model"), "--out-dir", str(tmp_path / "out"),
         "--candidates", "2", "--frames", "9", "--width", "64", "--height", "64", "--steps", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["video-0.mp4", "video-1.mp4"]
    bad = runner.invoke(app, ["generate", "x", "--model-dir", str(tmp_path / "model"), "--width", "70"])
    assert bad.exit_code == 2 and "params.width" in bad.output


def test_train_lora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_wan_dir: Path, wan_engine: Engine) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    for name, value in {
        "DATABASE_URL": url, "STORAGE": str(tmp_path / "media"), "WORK_DIR": str(tmp_path / "work"),
        "MODEL_DIR": str(tiny_wan_dir),
    }.items():  # fmt: skip
        monkeypatch.setenv(f"CREATORMESH_VIDEO_DIFFUSION_{name}", value)
    args = ["train-lora", "--steps", "15", "--rank", "4", "--learning-rate", "0.01", "--width", "32", "--height", "32"]
    args += ["--frames", "5", "--activate"]
    empty = runner.invoke(app, args)
    assert empty.exit_code == 2 and "needs at least 1" in empty.output
    migrate(url)
    store = JobStore(url)
    for prompt in PROMPTS:
        add_pick(store, LocalStorage(tmp_path / "media"), wan_engine, prompt, tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "lora-0001: 3 training / 1 held-out picks" in result.output and "now the active adapter" in result.output
    assert store.active_version() == "lora-0001"
    assert (tmp_path / "work" / "lora" / "mlflow" / "mlflow.db").is_file()  # the run was tracked locally
    store.close()


def test_prepare_builds_the_tiny_models_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from creatormesh.video_diffusion.prepare import CLIP_VARIABLE, ensure_model
    from creatormesh.video_diffusion.quality import CLIPScorer

    monkeypatch.delenv(CLIP_VARIABLE, raising=False)
    model = ensure_model(tmp_path / "models" / "tiny-wan")
    assert (model / "model_index.json").is_file()
    clip_dir = Path(os.environ[CLIP_VARIABLE])  # what the services started after prepare will read
    assert clip_dir == tmp_path / "models" / "tiny-clip" and (clip_dir / "config.json").is_file()
    assert CLIPScorer.load(clip_dir) is not None
    stamp = (model / "model_index.json").stat().st_mtime_ns
    assert ensure_model(model) == model and (model / "model_index.json").stat().st_mtime_ns == stamp  # reused
