"""Training: features of the catalogue, the two-tower and sequence training loops (early stopping on the
validation split), score calibration, the blend weights, and the checkpoint (safetensors + metadata.json)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.nn import functional
from tqdm import tqdm  # type: ignore[import-untyped]

from creatormesh.common.embeddings import TextEmbedder, embed_texts, embedder_key
from creatormesh.ranking.data import DEFAULT_DATA_DIR, Dataset, Item, Split, load_dataset, split_dataset, top_genres
from creatormesh.ranking.metrics import ndcg_at_k, recall_at_k
from creatormesh.ranking.models import (
    OOV,
    FeatureSpace,
    SASRec,
    SequenceConfig,
    TwoTower,
    TwoTowerConfig,
    left_pad,
)

TWO_TOWER_FILE = "two_tower.safetensors"
SEQUENCE_FILE = "sequence.safetensors"
ITEMS_FILE = "items.safetensors"
METADATA_FILE = "metadata.json"
PRIOR_WEIGHT = 10.0  # pseudo-ratings of the Bayesian mean
MIN_TAG_ITEMS = 2  # a hashtag enters the vocabulary when at least this many items carry it
MAX_TAGS = 1000


@dataclass(frozen=True)
class TrainConfig:
    """Training options (``epochs`` = None: each model's own budget; early stopping picks the best epoch)."""

    epochs: int | None = None
    batch_size: int = 512
    lr: float = 2e-3
    dim: int = 64
    seed: int = 0
    max_users: int | None = None
    holdout: int = 5
    device: str = "cpu"
    two_tower_epochs: int = 10
    sequence_epochs: int = 24
    sequence_batch_size: int = 64
    sequence_lr: float = 3e-3
    sequence_dropout: float = 0.2
    sequence_negatives: int = 2048  # 0: full softmax over the catalogue; else sampled softmax with this many
    patience: int = 3
    progress: bool = True


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    validation: dict[str, dict[str, float]]
    blend: dict[str, float]
    seconds: float


@dataclass
class Prepared:
    """The split, the catalogue (every item in the data, in id order) and its feature tensors."""

    data: Dataset
    split: Split
    catalogue: list[Item]
    index: dict[str, int]
    space: FeatureSpace
    counts: NDArray[np.float32]
    quality: NDArray[np.float32]
    engagement_rate: NDArray[np.float32]
    vocab: Tensor  # (N,) id index of each catalogue item (OOV when it has no training interaction)
    genres: Tensor  # (N, G)
    tags: Tensor  # (N, T)
    text: Tensor  # (N, 384)
    engagement: Tensor  # (N, 4) with the engagement rate absent
    engagement_known: Tensor  # (N, 4) with the engagement rate present
    rating_scale: tuple[float, float] = (0.0, 1.0)
    default_quality: float = 0.5
    seconds: dict[str, float] = field(default_factory=dict)

    def histories(self, users: Sequence[str], stage: str) -> list[list[int]]:
        return [[self.index[i] for i in self.split.history(u, stage)] for u in users]

    def targets(self, users: Sequence[str], stage: str) -> list[set[int]]:
        return [{self.index[i] for i in self.split.targets(u, stage)} for u in users]

    def interests(self, users: Sequence[str]) -> Tensor:
        """Simulated signup interests: top-3 genres of each user's training interactions (genre part only)."""
        items = self.data.items
        rows = [
            np.concatenate(
                [
                    self.space.genre_vector(top_genres([r.item_id for r in self.split.train.get(u, [])], items)),
                    np.zeros(len(self.space.tags), dtype=np.float32),
                ]
            )
            for u in users
        ]
        return (
            torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, len(self.space.genres) + len(self.space.tags))
        )


DEFAULT_TEXT_CACHE = Path(".creatormesh/ranking/text-embeddings")


# --- features ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStatistics:
    counts: NDArray[np.float32]  # training interactions
    quality: NDArray[np.float32]  # Bayesian mean rating scaled to [0, 1] (the quality prior)
    engagement_rate: NDArray[np.float32]  # Bayesian share of high ratings (stand-in for an engagement rate)
    rating_scale: tuple[float, float]
    default_quality: float  # the prior of an item without ratings


def item_statistics(catalogue: Sequence[Item], split: Split) -> ItemStatistics:
    """Per-item statistics of the training interactions."""
    ratings = [r for seq in split.train.values() for r in seq]
    values = np.array([r.rating for r in ratings], dtype=np.float64) if ratings else np.ones(1)
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else 1.0
    mean = float(values.mean())
    good = low + 0.7 * span
    good_share = float((values >= good).mean())
    index = {item.item_id: i for i, item in enumerate(catalogue)}
    n, total, hits = np.zeros(len(catalogue)), np.zeros(len(catalogue)), np.zeros(len(catalogue))
    for r in ratings:
        i = index[r.item_id]
        n[i] += 1
        total[i] += r.rating
        hits[i] += r.rating >= good
    bayes = (total + PRIOR_WEIGHT * mean) / (n + PRIOR_WEIGHT)
    quality = np.clip((bayes - low) / span, 0.0, 1.0) if high > low else np.full(len(catalogue), 0.5)
    rate = (hits + PRIOR_WEIGHT * good_share) / (n + PRIOR_WEIGHT)
    default = (mean - low) / span if high > low else 0.5
    return ItemStatistics(
        n.astype(np.float32), quality.astype(np.float32), rate.astype(np.float32), (low, high), default
    )


def build_space(catalogue: Sequence[Item], counts: NDArray[np.float32], split: Split) -> FeatureSpace:
    genres = sorted({g for item in catalogue for g in item.genres})
    tag_items = Counter(t for item in catalogue for t in item.tags)
    tags = sorted(t for t, c in tag_items.most_common(MAX_TAGS) if c >= MIN_TAG_ITEMS)
    items = tuple(item.item_id for item, c in zip(catalogue, counts, strict=True) if c > 0)
    users = tuple(u for u, seq in split.train.items() if seq)
    return FeatureSpace(
        genres=tuple(genres),
        tags=tuple(tags),
        items=items,
        users=users,
        max_log_count=math.log1p(float(counts.max())) if len(counts) else 1.0,
    )


def prepare(data: Dataset, split: Split, embedder: TextEmbedder | None, text_cache: Path | None = None) -> Prepared:
    start = time.perf_counter()
    catalogue = list(data.items.values())
    stats = item_statistics(catalogue, split)
    counts, quality, rate = stats.counts, stats.quality, stats.engagement_rate
    space = build_space(catalogue, counts, split)
    text = embed_texts([item.text for item in catalogue], embedder, text_cache)
    embedded = time.perf_counter()
    engagement = np.stack([space.engagement(c, q, None) for c, q in zip(counts, quality, strict=True)])
    known = np.stack([space.engagement(c, q, float(r)) for c, q, r in zip(counts, quality, rate, strict=True)])
    return Prepared(
        data=data,
        split=split,
        catalogue=catalogue,
        index={item.item_id: i for i, item in enumerate(catalogue)},
        space=space,
        counts=counts,
        quality=quality,
        engagement_rate=rate,
        vocab=torch.tensor([space.item_index(item.item_id) for item in catalogue], dtype=torch.long),
        genres=torch.from_numpy(np.stack([space.genre_vector(item.genres) for item in catalogue])),
        tags=torch.from_numpy(np.stack([space.tag_vector(item.tags) for item in catalogue])),
        text=torch.from_numpy(text),
        engagement=torch.from_numpy(engagement),
        engagement_known=torch.from_numpy(known),
        rating_scale=stats.rating_scale,
        default_quality=stats.default_quality,
        seconds={"text_embeddings": embedded - start},
    )


# --- evaluation helpers used while training --------------------------------------------------------------------------


def per_user_metrics(
    scores: Tensor, histories: Sequence[Sequence[int]], targets: Sequence[set[int]]
) -> dict[str, NDArray[np.float64]]:
    """Recall@10/50 and NDCG@10 of each score row (users × catalogue) with the user's history excluded."""
    s = scores.detach().float().cpu().clone()
    for row, items in enumerate(histories):
        if items:
            s[row, list(items)] = -math.inf
    top = torch.topk(s, min(50, s.shape[1]), dim=1).indices.tolist()
    pairs = list(zip(top, targets, strict=True))
    return {
        "recall@10": np.array([recall_at_k(r, t, 10) for r, t in pairs], dtype=np.float64),
        "recall@50": np.array([recall_at_k(r, t, 50) for r, t in pairs], dtype=np.float64),
        "ndcg@10": np.array([ndcg_at_k(r, t, 10) for r, t in pairs], dtype=np.float64),
    }


def rank_metrics(scores: Tensor, histories: Sequence[Sequence[int]], targets: Sequence[set[int]]) -> dict[str, float]:
    """Mean Recall@10/50 and NDCG@10 over users (see ``per_user_metrics``)."""
    return {k: float(v.mean()) if len(v) else 0.0 for k, v in per_user_metrics(scores, histories, targets).items()}


def item_vectors(model: TwoTower, prep: Prepared, device: str, batch: int = 4096) -> Tensor:
    """Item-tower vectors of the whole catalogue (without engagement rate, as for catalogue items)."""
    out = []
    for lo in range(0, len(prep.catalogue), batch):
        sl = slice(lo, lo + batch)
        out.append(
            model.item(
                prep.vocab[sl].to(device),
                prep.genres[sl].to(device),
                prep.tags[sl].to(device),
                prep.text[sl].to(device),
                prep.engagement[sl].to(device),
            )
        )
    return torch.cat(out) if out else torch.zeros(0, model.config.dim, device=device)


def user_inputs(prep: Prepared, users: Sequence[str], histories: Sequence[Sequence[int]]) -> tuple[Tensor, ...]:
    ids = torch.tensor([prep.space.user_index(u) for u in users], dtype=torch.long)
    vocab = prep.vocab.numpy()
    hist = left_pad([[int(vocab[i]) for i in h] for h in histories], 50)
    return ids, prep.interests(users), torch.from_numpy(hist)


def two_tower_scores(model: TwoTower, prep: Prepared, users: Sequence[str], stage: str, device: str) -> Tensor:
    """Raw cosine scores (users × catalogue)."""
    ids, interests, hist = user_inputs(prep, users, prep.histories(users, stage))
    items = item_vectors(model, prep, device)
    users_vec: Tensor = model.user(ids.to(device), interests.to(device), hist.to(device))
    return users_vec @ items.T


def sequence_scores(model: SASRec, prep: Prepared, users: Sequence[str], stage: str, device: str) -> Tensor:
    """Raw next-item logits (users × catalogue) from the last ``max_len`` history items."""
    table = catalogue_embeddings(model, prep, device)
    padded = torch.cat([torch.zeros(1, table.shape[1], device=device), table])
    seqs = torch.from_numpy(left_pad([[i + 1 for i in h] for h in prep.histories(users, stage)], model.config.max_len))
    out = []
    for lo in range(0, len(users), 256):
        s = seqs[lo : lo + 256].to(device)
        hidden = model.encode(padded[s], s > 0)[:, -1]
        out.append(hidden @ table.T)
    return torch.cat(out) if out else torch.zeros(0, table.shape[0], device=device)


def catalogue_embeddings(model: SASRec, prep: Prepared, device: str) -> Tensor:
    return model.item_embeddings(prep.vocab.to(device), prep.genres.to(device))


# --- training loops -----------------------------------------------------------------------------------------------


def _progress(total: int, desc: str, enabled: bool) -> Any:
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _early_stopping(
    name: str,
    epochs: int,
    patience: int,
    model: nn.Module,
    run_epoch: Callable[[int], float],
    validate: Callable[[], dict[str, float]],
    progress: bool,
) -> tuple[int, dict[str, float]]:
    """Run epochs, keep the weights of the best validation NDCG@10, stop after ``patience`` epochs without gain."""
    best: tuple[int, dict[str, float], dict[str, Tensor]] | None = None
    for epoch in range(1, epochs + 1):
        loss = run_epoch(epoch)
        model.eval()
        with torch.inference_mode():
            metrics = validate()
        model.train()
        if progress:
            tqdm.write(f"{name} epoch {epoch}: loss {loss:.4f}  val ndcg@10 {metrics['ndcg@10']:.4f}")
        if best is None or metrics["ndcg@10"] > best[1]["ndcg@10"]:
            best = (epoch, metrics, {k: v.detach().clone() for k, v in model.state_dict().items()})
        elif epoch - best[0] >= patience:
            break
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    return best[0], best[1]


def train_two_tower(prep: Prepared, cfg: TrainConfig) -> tuple[TwoTower, int, dict[str, float]]:
    """In-batch sampled softmax with log-Q correction, plus uniform catalogue negatives (mixed negative sampling)."""
    device = cfg.device
    space = prep.space
    config = TwoTowerConfig(
        n_users=len(space.users) + 1,
        n_items=len(space.items) + 1,
        n_genres=len(space.genres),
        n_tags=len(space.tags),
        text_dim=int(prep.text.shape[1]),
        dim=cfg.dim,
    )
    model = TwoTower(config).to(device)
    users = [u for u, seq in prep.split.train.items() if seq]
    user_ids, interests, _ = user_inputs(prep, users, [[] for _ in users])
    vocab = prep.vocab.numpy()
    ex_user, ex_item, ex_hist = [], [], []
    for row, u in enumerate(users):
        seq = [prep.index[r.item_id] for r in prep.split.train[u]]
        ids = np.concatenate([np.zeros(config.history, dtype=np.int64), vocab[seq]])
        ex_user.append(np.full(len(seq), row))
        ex_item.append(np.array(seq))
        ex_hist.append(np.lib.stride_tricks.sliding_window_view(ids, config.history)[: len(seq)])
    e_user = torch.from_numpy(np.concatenate(ex_user)).long()
    e_item = torch.from_numpy(np.concatenate(ex_item)).long()
    e_hist = torch.from_numpy(np.concatenate(ex_hist)).long()
    n_items = len(prep.catalogue)
    q = torch.from_numpy(prep.counts / max(float(prep.counts.sum()), 1.0))
    n_neg = max(cfg.batch_size // 2, 1)
    val_users = prep.split.eval_users("validation")
    val_hist, val_targets = prep.histories(val_users, "validation"), prep.targets(val_users, "validation")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)

    def item_batch(idx: Tensor, with_rate: Tensor) -> Tensor:
        ids = prep.vocab[idx].clone()
        ids[torch.rand(len(ids), generator=gen) < 0.1] = OOV  # id dropout: content-only vectors for new items
        eng = torch.where(with_rate[:, None], prep.engagement_known[idx], prep.engagement[idx])
        args = (ids, prep.genres[idx], prep.tags[idx], prep.text[idx], eng)
        vectors: Tensor = model.item(*(a.to(device) for a in args))
        return vectors

    def run_epoch(epoch: int) -> float:
        order = torch.randperm(len(e_user), generator=gen)
        total, steps = 0.0, 0
        with _progress(len(order), f"two-tower {epoch}", cfg.progress) as bar:
            for lo in range(0, len(order), cfg.batch_size):
                b = order[lo : lo + cfg.batch_size]
                rows, pos = e_user[b], e_item[b]
                uid = user_ids[rows].clone()
                uid[torch.rand(len(uid), generator=gen) < 0.25] = OOV
                hist = e_hist[b].clone()
                hist[torch.rand(len(hist), generator=gen) < 0.1] = 0  # interests-only users
                u = model.user(uid.to(device), interests[rows].to(device), hist.to(device))
                neg = torch.randint(0, n_items, (n_neg,), generator=gen)
                cand = torch.cat([pos, neg])
                v = item_batch(cand, torch.rand(len(cand), generator=gen) < 0.5)
                expected = len(b) * q[cand] + n_neg / n_items
                logits = (u @ v.T) / config.temperature - torch.log(expected).to(device)[None, :]
                same = (pos[:, None] == cand[None, :]).to(device)
                same[torch.arange(len(b)), torch.arange(len(b))] = False
                logits = logits.masked_fill(same, -math.inf)
                loss = functional.cross_entropy(logits, torch.arange(len(b), device=device))
                opt.zero_grad()
                torch.autograd.backward(loss)
                opt.step()
                total, steps = total + loss.detach().item(), steps + 1
                bar.update(len(b))
                bar.set_postfix(loss=f"{total / steps:.4f}")
        return total / max(steps, 1)

    def validate() -> dict[str, float]:
        return rank_metrics(two_tower_scores(model, prep, val_users, "validation", device), val_hist, val_targets)

    epochs = cfg.epochs or cfg.two_tower_epochs
    model.train()
    best_epoch, metrics = _early_stopping("two-tower", epochs, cfg.patience, model, run_epoch, validate, cfg.progress)
    return model, best_epoch, metrics


def sequence_windows(seqs: Sequence[Sequence[int]], length: int, offset: int) -> NDArray[np.int64]:
    """Windows of ``length + 1`` catalogue positions (+1; 0 = padding): one ending at the newest item, then
    windows tiling the older part, shifted by ``offset`` (varied per epoch)."""
    rows: list[list[int]] = []
    for seq in seqs:
        end = len(seq)
        ends = [end] if end >= 2 else []
        end -= offset or length
        while end >= 2:
            ends.append(end)
            end -= length
        rows.extend([i + 1 for i in seq[max(0, e - length - 1) : e]] for e in ends)
    return left_pad(rows, length + 1)


def train_sequence(prep: Prepared, cfg: TrainConfig) -> tuple[SASRec, int, dict[str, float]]:
    """Next-item prediction at every position, full softmax cross-entropy over the catalogue."""
    device = cfg.device
    config = SequenceConfig(
        n_items=len(prep.space.items) + 1, n_genres=len(prep.space.genres), dim=cfg.dim, dropout=cfg.sequence_dropout
    )
    model = SASRec(config).to(device)
    seqs = [[prep.index[r.item_id] for r in seq] for seq in prep.split.train.values()]
    val_users = prep.split.eval_users("validation")
    val_hist, val_targets = prep.histories(val_users, "validation"), prep.targets(val_users, "validation")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.sequence_lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    vocab = torch.cat([torch.zeros(1, dtype=torch.long), prep.vocab]).to(device)
    genres = torch.cat([torch.zeros(1, prep.genres.shape[1]), prep.genres]).to(device)
    n_items = len(prep.catalogue)
    q = torch.from_numpy(prep.counts / max(float(prep.counts.sum()), 1.0)).to(device)

    def run_epoch(epoch: int) -> float:
        offset = int(torch.randint(0, config.max_len, (1,), generator=gen))
        windows = torch.from_numpy(sequence_windows(seqs, config.max_len, offset))
        order = torch.randperm(len(windows), generator=gen)
        total, steps = 0.0, 0
        with _progress(len(order), f"sequence {epoch}", cfg.progress) as bar:
            for lo in range(0, len(order), cfg.sequence_batch_size):
                w = windows[order[lo : lo + cfg.sequence_batch_size]].to(device)
                inputs, targets = w[:, :-1], w[:, 1:]
                valid = inputs > 0
                ids = vocab[inputs].clone()
                ids[torch.rand(ids.shape, generator=gen).to(device) < 0.1] = OOV
                hidden = model.encode(model.item_embeddings(ids, genres[inputs]), valid)
                keep = valid & (targets > 0)
                goal = targets[keep] - 1
                if cfg.sequence_negatives:  # sampled softmax: batch targets + uniform items, log-Q corrected
                    neg = torch.randint(0, n_items, (cfg.sequence_negatives,), generator=gen).to(device)
                    cand, goal = torch.unique(torch.cat([goal, neg]), return_inverse=True)
                    goal = goal[: int(keep.sum())]
                    table = model.item_embeddings(prep.vocab.to(device)[cand], prep.genres.to(device)[cand])
                    expected = len(goal) * q[cand] + cfg.sequence_negatives / n_items
                    logits = hidden[keep] @ table.T - torch.log(expected)[None, :]
                else:
                    table = model.item_embeddings(prep.vocab.to(device), prep.genres.to(device))
                    logits = hidden[keep] @ table.T
                loss = functional.cross_entropy(logits, goal)
                opt.zero_grad()
                torch.autograd.backward(loss)
                opt.step()
                total, steps = total + loss.detach().item(), steps + 1
                bar.update(len(w))
                bar.set_postfix(loss=f"{total / steps:.4f}")
        return total / max(steps, 1)

    def validate() -> dict[str, float]:
        return rank_metrics(sequence_scores(model, prep, val_users, "validation", device), val_hist, val_targets)

    epochs = cfg.epochs or cfg.sequence_epochs
    model.train()
    best_epoch, metrics = _early_stopping("sequence", epochs, cfg.patience, model, run_epoch, validate, cfg.progress)
    return model, best_epoch, metrics


# --- calibration and blend ----------------------------------------------------------------------------------------


def standardise(raw: Tensor) -> dict[str, float]:
    """Mean and standard deviation of raw scores (validation users × catalogue)."""
    return {"mean": float(raw.mean()), "std": max(float(raw.std()), 1e-6)}


def tune_blend(
    z_two_tower: Tensor, z_sequence: Tensor, histories: Sequence[Sequence[int]], targets: Sequence[set[int]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Weight w of w·z_tt + (1−w)·z_seq (standardised scores), chosen on validation NDCG@10 with the
    one-standard-error rule: the w closest to an even blend (0.5) among those whose NDCG@10 is within one paired
    standard error of the best (differences smaller than that are validation noise)."""
    grid = [round(float(w), 2) for w in np.linspace(0.0, 1.0, 21)]
    runs = {w: per_user_metrics(w * z_two_tower + (1.0 - w) * z_sequence, histories, targets) for w in grid}
    best = max(grid, key=lambda w: (float(runs[w]["ndcg@10"].mean()), -abs(w - 0.5)))
    top = runs[best]["ndcg@10"]

    def within(w: float) -> bool:
        diff = top - runs[w]["ndcg@10"]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        return float(diff.mean()) <= se

    chosen = min((w for w in grid if within(w)), key=lambda w: (abs(w - 0.5), -float(runs[w]["ndcg@10"].mean())))
    metrics = {k: float(v.mean()) if len(v) else 0.0 for k, v in runs[chosen].items()}
    return {"two_tower": chosen, "sequence": round(1.0 - chosen, 2)}, metrics


# --- checkpoint ---------------------------------------------------------------------------------------------------


def _contiguous(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def weights_version(*states: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for state in states:
        for key in sorted(state):
            digest.update(key.encode())
            digest.update(state[key].numpy().tobytes())
    return "rk-" + digest.hexdigest()[:10]


def train(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    out_dir: str | Path = ".creatormesh/ranking/model",
    config: TrainConfig | None = None,
    embedder: TextEmbedder | None = None,
    text_cache: Path | None = DEFAULT_TEXT_CACHE,
) -> TrainResult:
    """Train both models on ``data_dir`` and write the checkpoint to ``out_dir`` (item texts already embedded
    are read from ``text_cache``; None: embed every text)."""
    cfg = config or TrainConfig()
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(out_dir)
    data = load_dataset(data_dir, max_users=cfg.max_users)
    split = split_dataset(data, cfg.holdout)
    prep = prepare(data, split, embedder, text_cache)
    two_tower, tt_epoch, tt_val = train_two_tower(prep, cfg)
    sequence, seq_epoch, seq_val = train_sequence(prep, cfg)

    val_users = split.eval_users("validation")
    hist, targets = prep.histories(val_users, "validation"), prep.targets(val_users, "validation")
    with torch.inference_mode():
        raw_tt = two_tower_scores(two_tower, prep, val_users, "validation", cfg.device).cpu()
        raw_seq = sequence_scores(sequence, prep, val_users, "validation", cfg.device).cpu()
        cal = {"two_tower": standardise(raw_tt), "sequence": standardise(raw_seq)}
        z_tt = (raw_tt - cal["two_tower"]["mean"]) / cal["two_tower"]["std"]
        z_seq = (raw_seq - cal["sequence"]["mean"]) / cal["sequence"]["std"]
        blend, blend_val = tune_blend(z_tt, z_seq, hist, targets)
        vectors = item_vectors(two_tower, prep, cfg.device).cpu()
        seq_table = catalogue_embeddings(sequence, prep, cfg.device).cpu()

    tt_state, seq_state = _contiguous(two_tower.state_dict()), _contiguous(sequence.state_dict())
    version = weights_version(tt_state, seq_state)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tt_state, str(out / TWO_TOWER_FILE), metadata={"version": version})
    save_file(seq_state, str(out / SEQUENCE_FILE), metadata={"version": version})
    items = {"item_vectors": vectors, "text_embeddings": prep.text, "sequence_embeddings": seq_table}
    save_file(_contiguous(items), str(out / ITEMS_FILE), metadata={"version": version})
    validation = {"two_tower": tt_val, "sequence": seq_val, "blend": blend_val}
    seconds = time.perf_counter() - start
    meta = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "train": asdict(cfg),
            "two_tower": asdict(two_tower.config),
            "sequence": asdict(sequence.config),
            "best_epochs": {"two_tower": tt_epoch, "sequence": seq_epoch},
        },
        "data": {
            "name": data.name,
            "dir": str(Path(data_dir)),
            "max_users": cfg.max_users,
            "holdout": cfg.holdout,
            "users": len(data.sequences),
            "items": len(data.items),
            "interactions": data.n_interactions,
            "rows": split.counts(),
            "rating_scale": list(prep.rating_scale),
        },
        "embedder": {"key": embedder_key(embedder), "dim": int(prep.text.shape[1])},
        "vocabularies": prep.space.to_json(),
        "items": [
            {
                "id": item.item_id,
                "title": item.title,
                "genres": list(item.genres),
                "tags": list(item.tags),
                "text": item.text,
                "count": int(c),
                "quality": round(float(q), 6),
                "engagement_rate": round(float(r), 6),
            }
            for item, c, q, r in zip(prep.catalogue, prep.counts, prep.quality, prep.engagement_rate, strict=True)
        ],
        "features": {"default_quality": round(prep.default_quality, 6)},
        "calibration": cal,
        "blend": blend,
        "validation": validation,
        "seconds": {"total": round(seconds, 1), **{k: round(v, 1) for k, v in prep.seconds.items()}},
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=1))
    return TrainResult(path=out, version=version, validation=validation, blend=blend, seconds=seconds)
