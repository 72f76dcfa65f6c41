"""Held-out evaluation (split grouped by channel): MSE and Spearman of V against the propagation label, for the
full, quantised and light models and simple baselines, content-only and with behavioural signals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr
from torch import nn

from creatormesh.common.embeddings import TextEmbedder, default_embedder
from creatormesh.viral_scoring import checkpoint
from creatormesh.viral_scoring.baselines import (
    behaviour_matrix,
    category_hour_means,
    content_matrix,
    mean_baseline,
    ridge_cv,
)
from creatormesh.viral_scoring.features import FeatureBatch, embedding_text
from creatormesh.viral_scoring.labels import SUBSCORES
from creatormesh.viral_scoring.model import predict, quantize
from creatormesh.viral_scoring.prepare_data import DEFAULT_TEXT_CACHE, Prepared, channel_bucket, prepare, splits

SETTINGS = ("content_only", "with_behaviour")


def spearman(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def metrics(pred: NDArray[np.float32], y: NDArray[np.float32]) -> dict[str, float]:
    return {"mse": float(((pred - y) ** 2).mean()), "spearman": spearman(pred, y), "samples": len(y)}


def _keys(prep: Prepared, idx: NDArray[np.int64]) -> list[tuple[int | None, int | None]]:
    items = [prep.records[i].item for i in idx]
    return [(it.category_id, it.publish_time.hour // 3 if it.publish_time else None) for it in items]


def evaluate(
    prep: Prepared,
    train_idx: NDArray[np.int64],
    test_idx: NDArray[np.int64],
    full: nn.Module,
    light: nn.Module,
    int8_embedding: NDArray[np.float32] | None = None,
) -> dict[str, Any]:
    """{"settings": {setting: {model: {mse, spearman, samples}}}, "subscores": {...}} on ``test_idx``.

    The int8 row is the int8 model on ``int8_embedding`` (the test items embedded by the int8 sentence encoder,
    what QUANTIZED mode serves), or on the float embeddings when none is given."""
    y_tr, y_te = prep.labels.y[train_idx], prep.labels.y[test_idx]
    test = prep.features.select(test_idx)
    train = prep.features.select(train_idx)
    folds = np.array([int(channel_bucket(prep.channels[i], 7) * 5) for i in train_idx])
    quantised = quantize(full)
    out: dict[str, Any] = {"settings": {}, "subscores": {}}
    for setting in SETTINGS:
        batch = test if setting == "with_behaviour" else test.without("behavioural")
        matrix = behaviour_matrix if setting == "with_behaviour" else content_matrix
        rows = {
            "global mean": metrics(mean_baseline(y_tr, len(y_te)), y_te),
            "category x hour mean": metrics(
                category_hour_means(_keys(prep, train_idx), y_tr, _keys(prep, test_idx)), y_te
            ),
            "ridge (text embedding + stats)" if setting == "content_only" else "ridge (text + behaviour)": metrics(
                ridge_cv(matrix(train), y_tr, matrix(test), folds), y_te
            ),
            "light model": metrics(predict(light, batch)[0], y_te),
            "full model": metrics(predict(full, batch)[0], y_te),
            "full model, int8": metrics(predict(quantised, int8_batch(batch, int8_embedding))[0], y_te),
        }
        out["settings"][setting] = rows
    _, sub = predict(full, test)
    proxies = prep.labels.sub[test_idx]
    for j, name in enumerate(SUBSCORES):
        known = ~np.isnan(proxies[:, j])
        out["subscores"][name] = {"spearman": spearman(sub[known, j], proxies[known, j]), "samples": int(known.sum())}
    return out


def int8_embeddings(prep: Prepared, idx: NDArray[np.int64], embedder: TextEmbedder | None) -> NDArray[np.float32]:
    """``idx``'s texts embedded by the int8 copy of the sentence encoder (what QUANTIZED mode serves)."""
    encoder = (embedder or default_embedder()).int8()
    return encoder.embed([embedding_text(prep.records[i].item) for i in idx])


def evaluate_checkpoint(
    model_dir: Path,
    data_dir: Path | None = None,
    embedder: TextEmbedder | None = None,
    text_cache: Path | None = DEFAULT_TEXT_CACHE,
) -> dict[str, Any]:
    """Re-run the held-out evaluation of a saved checkpoint: its own data (or ``data_dir``, same layout) split
    with the seeds and fractions it was trained with."""
    ckpt = checkpoint.load(model_dir)
    cfg = ckpt.metadata["train_config"]
    source = Path(data_dir or ckpt.metadata["dataset"])
    prep = prepare(source, embedder, text_cache=text_cache, max_records=cfg.get("max_records"))
    train, val, test = splits(prep.channels, cfg["test_fraction"], cfg["val_fraction"], cfg["seed"])
    rest = np.concatenate([train, val])
    return evaluate(prep, rest, test, ckpt.full, ckpt.light, int8_embeddings(prep, test, embedder))


def int8_batch(batch: FeatureBatch, embedding: NDArray[np.float32] | None) -> FeatureBatch:
    return batch if embedding is None else replace(batch, embedding=embedding)


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for setting, rows in report["settings"].items():
        lines.append(f"\n{setting}")
        lines.append(f"  {'model':34} {'MSE':>8} {'Spearman':>9} {'n':>5}")
        for name, m in rows.items():
            lines.append(f"  {name:34} {m['mse']:8.4f} {m['spearman']:9.3f} {m['samples']:5d}")
    lines.append("\nsubscores vs proxy labels (full model, with behaviour)")
    for name, m in report["subscores"].items():
        lines.append(f"  {name}  Spearman {m['spearman']:.3f}  (n={m['samples']})")
    return "\n".join(lines)
