"""`creatormesh viral_scoring train`: fit the full and light models on the shipped (or given) data.

Loss = MSE(V, y) + rank_weight * pairwise logistic ranking loss on V's logit + aux_weight * masked MSE of the
subscores against their proxy labels (labels.py). Behaviour is dropped at random during training so the same
model scores content alone (a script, a fresh upload) and content with engagement signals.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional
from tqdm import tqdm  # type: ignore[import-untyped]

from creatormesh.common.embeddings import TextEmbedder, embedder_key
from creatormesh.viral_scoring import checkpoint
from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR
from creatormesh.viral_scoring.evaluate import evaluate, int8_embeddings
from creatormesh.viral_scoring.features import MODALITIES, FeatureBatch
from creatormesh.viral_scoring.model import LightModel, ModelConfig, ViralModel, parameter_count, predict, tensors
from creatormesh.viral_scoring.prepare_data import DEFAULT_TEXT_CACHE, Prepared, prepare, splits

BEHAVIOURAL = MODALITIES.index("behavioural")
M = TypeVar("M", ViralModel, LightModel)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 80
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    dim: int = 32
    dropout: float = 0.3
    rank_weight: float = 0.05
    aux_weight: float = 0.5
    behaviour_dropout: float = 0.3
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    patience: int = 20
    restarts: int = 3
    threads: int = 1  # torch threads while training: results are reproducible run to run (and seconds apart)
    seed: int = 0  # picks the channel split
    init_seed: int = 0  # model initialisation and batch order
    max_records: int | None = None
    progress: bool = True


@dataclass(frozen=True)
class Targets:
    y: Tensor
    sub: Tensor
    sub_known: Tensor


def targets(prep: Prepared, idx: NDArray[np.int64]) -> Targets:
    sub = prep.labels.sub[idx]
    known = ~np.isnan(sub)
    return Targets(
        torch.from_numpy(prep.labels.y[idx]),
        torch.from_numpy(np.nan_to_num(sub)),
        torch.from_numpy(known),
    )


def pairwise_rank_loss(z: Tensor, y: Tensor, margin: float = 0.05) -> Tensor:
    """Logistic loss over every pair in the batch whose labels differ by more than ``margin``."""
    diff = y.unsqueeze(1) - y.unsqueeze(0)
    pairs = diff > margin
    if not bool(pairs.any()):
        return z.sum() * 0.0
    return functional.softplus(-(z.unsqueeze(1) - z.unsqueeze(0))[pairs]).mean()


def loss_terms(out: tuple[Tensor, Tensor, Tensor], t: Targets, cfg: TrainConfig) -> tuple[Tensor, dict[str, float]]:
    v, z, sub = out
    mse = functional.mse_loss(v, t.y)
    rank = pairwise_rank_loss(z, t.y)
    known = t.sub_known.to(sub.dtype)
    aux = (((sub - t.sub) ** 2) * known).sum() / known.sum().clamp(min=1.0)
    total = mse + cfg.rank_weight * rank + cfg.aux_weight * aux
    parts = {"mse": mse, "rank": rank, "aux": aux, "total": total}
    return total, {k: float(t.detach()) for k, t in parts.items()}


def drop_behaviour(batch: FeatureBatch, p: float, rng: np.random.Generator) -> FeatureBatch:
    mask = batch.mask.copy()
    mask[:, BEHAVIOURAL] &= rng.random(len(mask)) >= p
    return replace(batch, mask=mask)


def fit(
    model: nn.Module,
    prep: Prepared,
    train_idx: NDArray[np.int64],
    val_idx: NDArray[np.int64],
    cfg: TrainConfig,
    name: str,
) -> dict[str, Any]:
    """AdamW with early stopping on validation MSE (mean of content-only and with-behaviour)."""
    rng = np.random.default_rng(cfg.init_seed)
    head: list[Tensor] = [p for name, p in model.named_parameters() if name.startswith("head.")]
    rest: list[Tensor] = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    groups: list[dict[str, Any]] = [{"params": rest}, {"params": head, "lr": cfg.lr * 10.0, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(  # alpha..epsilon and the bias are 6 numbers: they learn 10x faster, no decay
        groups,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    val_full = prep.features.select(val_idx)
    val_batches = (val_full, val_full.without("behavioural"))
    val_y = prep.labels.y[val_idx]
    best: tuple[float, dict[str, Tensor]] = (float("inf"), {})
    stale = 0
    last: dict[str, float] = {}
    bar = tqdm(range(cfg.epochs), desc=f"train {name}", disable=not cfg.progress, unit="epoch")
    for _ in bar:
        model.train()
        order = rng.permutation(train_idx)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            batch = drop_behaviour(prep.features.select(idx), cfg.behaviour_dropout, rng)
            loss, last = loss_terms(model(tensors(batch)), targets(prep, idx), cfg)
            opt.zero_grad()
            torch.autograd.backward(loss)
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        val_mse = float(np.mean([((predict(model, b)[0] - val_y) ** 2).mean() for b in val_batches]))
        bar.set_postfix(loss=f"{last['total']:.4f}", val_mse=f"{val_mse:.4f}")
        if val_mse < best[0] - 1e-5:
            best, stale = (val_mse, {k: t.detach().clone() for k, t in model.state_dict().items()}), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best[1])
    model.eval()
    return {
        "val_mse": best[0],
        "final_loss": last.get("total", float("nan")),
        **{f"last_{k}": v for k, v in last.items()},
    }


def best_of(
    build: type[M],
    config: ModelConfig,
    prep: Prepared,
    train_idx: NDArray[np.int64],
    val_idx: NDArray[np.int64],
    cfg: TrainConfig,
    name: str,
) -> tuple[M, dict[str, Any]]:
    """Train ``cfg.restarts`` models from different seeds and keep the best on validation (small data makes one
    run's result depend on its initialisation)."""
    best: tuple[M, dict[str, Any]] | None = None
    for r in range(cfg.restarts):
        torch.manual_seed(cfg.init_seed + 1000 * r)
        model = build(config)
        result = fit(
            model,
            prep,
            train_idx,
            val_idx,
            replace(cfg, init_seed=cfg.init_seed + 1000 * r),
            f"{name} {r + 1}/{cfg.restarts}",
        )
        if best is None or result["val_mse"] < best[1]["val_mse"]:
            best = (model, {**result, "restart": r})
    assert best is not None
    return best


def model_config(prep: Prepared, cfg: TrainConfig) -> ModelConfig:
    f = prep.features
    return ModelConfig(
        embedding_dim=f.embedding.shape[1],
        stats_dim=f.stats.shape[1],
        visual_dim=f.visual.shape[1],
        audio_dim=f.audio.shape[1],
        behavioural_dim=f.behavioural.shape[1],
        temporal_dim=f.temporal.shape[1],
        dim=cfg.dim,
        dropout=cfg.dropout,
    )


def train(
    data_dir: Path = DEFAULT_DATA_DIR,
    out_dir: Path = Path(".creatormesh/viral_scoring/model"),
    cfg: TrainConfig = TrainConfig(),
    embedder: TextEmbedder | None = None,
    text_cache: Path | None = DEFAULT_TEXT_CACHE,
) -> dict[str, Any]:
    """Train both models, evaluate them on the channel-grouped held-out split, save the checkpoint; the metadata."""
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(data_dir, out_dir, cfg, embedder, text_cache, started)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    data_dir: Path,
    out_dir: Path,
    cfg: TrainConfig,
    embedder: TextEmbedder | None,
    text_cache: Path | None,
    started: float,
) -> dict[str, Any]:
    torch.manual_seed(cfg.init_seed)
    prep = prepare(data_dir, embedder, text_cache=text_cache, max_records=cfg.max_records)
    train_idx, val_idx, test_idx = splits(prep.channels, cfg.test_fraction, cfg.val_fraction, cfg.seed)
    config = model_config(prep, cfg)
    full, full_fit = best_of(ViralModel, config, prep, train_idx, val_idx, cfg, "full")
    light, light_fit = best_of(LightModel, config, prep, train_idx, val_idx, cfg, "light")
    int8_embedding = int8_embeddings(prep, test_idx, embedder)
    report = evaluate(prep, np.concatenate([train_idx, val_idx]), test_idx, full, light, int8_embedding)
    coef = full.head.coefficients().detach().numpy()
    metadata: dict[str, Any] = {
        "version": f"vs-{datetime.now(UTC):%Y%m%d}-{checkpoint.weights_version(full)}",
        "dataset": str(data_dir),
        "trained_at": datetime.now(UTC).isoformat(),
        "train_samples": int(len(train_idx) + len(val_idx)),
        "test_samples": len(test_idx),
        "train_config": asdict(cfg),
        "embedder": embedder_key(embedder),
        "coefficients": {
            **dict(zip(("alpha", "beta", "gamma", "delta", "epsilon"), map(float, coef), strict=True)),
            "bias": float(full.head.bias.detach()),
        },
        "light_coefficients": [float(c) for c in light.head.coefficients().detach()],
        "fit": {"full": full_fit, "light": light_fit},
        "parameters": {"full": parameter_count(full), "light": parameter_count(light)},
        "evaluation": report,
        "seconds": round(time.perf_counter() - started, 1),
    }
    checkpoint.save(out_dir, full, light, metadata)
    return metadata
