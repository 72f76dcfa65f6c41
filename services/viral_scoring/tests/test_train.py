"""Training smoke: the checkpoint is complete, reloads to the same predictions, and records its evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from creatormesh.viral_scoring import checkpoint
from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR
from creatormesh.viral_scoring.features import FeatureBatch
from creatormesh.viral_scoring.model import predict, tensors
from creatormesh.viral_scoring.prepare_data import prepare
from creatormesh.viral_scoring.train import TrainConfig, loss_terms, pairwise_rank_loss, targets


def test_checkpoint_is_complete_and_records_its_evaluation(trained_model: Path) -> None:
    meta = json.loads((trained_model / "metadata.json").read_text())
    assert meta["version"].startswith("vs-") and meta["train_samples"] + meta["test_samples"] == 400
    for setting in ("content_only", "with_behaviour"):
        rows = meta["evaluation"]["settings"][setting]
        assert {"global mean", "category x hour mean", "light model", "full model", "full model, int8"} <= set(rows)
        assert all(np.isfinite(r["mse"]) and -1 <= r["spearman"] <= 1 for r in rows.values())
    assert set(meta["evaluation"]["subscores"]) == {"E", "H", "R", "S", "T"}
    assert all(v > 0 for k, v in meta["coefficients"].items() if k != "bias")
    assert (trained_model / "full.safetensors").is_file() and (trained_model / "light.safetensors").is_file()


def test_reloaded_models_predict_the_same(trained_model: Path) -> None:
    a, b = checkpoint.load(trained_model), checkpoint.load(trained_model)
    rng = np.random.default_rng(0)
    dims = a.full.config.input_dims()
    batch = FeatureBatch(*[rng.normal(size=(8, d)).astype(np.float32) for d in dims], np.ones((8, 5), dtype=bool))
    np.testing.assert_array_equal(predict(a.full, batch)[0], predict(b.full, batch)[0])
    assert a.version == b.version and a.version.endswith(checkpoint.weights_version(b.full))


def test_training_lowers_the_loss_on_its_data(trained_model: Path) -> None:
    prep = prepare(DEFAULT_DATA_DIR, max_records=120, text_cache=None)
    idx = np.arange(120)
    ckpt = checkpoint.load(trained_model)
    fresh = type(ckpt.full)(ckpt.full.config).eval()
    cfg = TrainConfig()
    with torch.no_grad():
        trained_loss, _ = loss_terms(ckpt.full(tensors(prep.features.select(idx))), targets(prep, idx), cfg)
        fresh_loss, _ = loss_terms(fresh(tensors(prep.features.select(idx))), targets(prep, idx), cfg)
    assert float(trained_loss) < float(fresh_loss)


def test_pairwise_rank_loss_prefers_the_right_order() -> None:
    y = torch.tensor([0.9, 0.1, 0.5])
    right = pairwise_rank_loss(torch.tensor([2.0, -2.0, 0.0]), y)
    wrong = pairwise_rank_loss(torch.tensor([-2.0, 2.0, 0.0]), y)
    assert float(right) < float(wrong)
    assert float(pairwise_rank_loss(torch.zeros(3), torch.full((3,), 0.5))) == pytest.approx(0.0)


def test_a_checkpoint_for_other_features_is_refused_with_the_reason(trained_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(trained_model, tmp_path / "old")
    meta = json.loads((copy / "metadata.json").read_text())
    meta["config"]["visual_dim"] = 15
    (copy / "metadata.json").write_text(json.dumps(meta))
    assert checkpoint.mismatch(trained_model) == ""
    with pytest.raises(ValueError, match="visual_dim 15 != "):
        checkpoint.load(copy)
    with pytest.raises(FileNotFoundError, match="viral_scoring train"):
        checkpoint.load(tmp_path / "none")
