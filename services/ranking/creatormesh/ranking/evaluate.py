"""The offline evaluation table: baselines and learned models on the held-out (test) split.

Every model is fitted on the train split; hyper-parameters (EASE λ, item-kNN neighbours, the blend) are chosen
on the validation split; test lists rank the whole catalogue for each user with history = train + validation,
excluding the history.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from creatormesh.common.embeddings import TextEmbedder
from creatormesh.ranking.baselines import EASE, ItemKNN, Popularity, Scorer
from creatormesh.ranking.data import DEFAULT_DATA_DIR, Split, load_dataset, split_dataset, top_genres
from creatormesh.ranking.metrics import ndcg_at_k, score_lists, top_k
from creatormesh.ranking.recommender import Recommender, UserContext
from creatormesh.ranking.train import METADATA_FILE, TrainConfig, train

EASE_LAMBDAS = (50.0, 100.0, 250.0, 1000.0)
KNN_NEIGHBOURS = (20, 50, 200)
COLUMNS = ("recall@10", "recall@50", "ndcg@10", "coverage@10", "ild@10")
ROWS = ("popularity", "item-kNN", "EASE", "two-tower", "sequence", "blend")


@dataclass
class EvaluationTable:
    rows: dict[str, dict[str, float]]
    users: int
    catalogue: int
    details: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        header = "| model | Recall@10 | Recall@50 | NDCG@10 | coverage@10 | ILD@10 |"
        lines = [header, "|---|---:|---:|---:|---:|---:|"]
        for name, row in self.rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
        return "\n".join(lines)


def _lists(
    scores: NDArray[Any], histories: Sequence[Sequence[int]], ids: Sequence[str], k: int = 50
) -> list[list[str]]:
    return [
        [ids[i] for i in top_k(row, k, np.array(h, dtype=np.intp))] for row, h in zip(scores, histories, strict=True)
    ]


def _ndcg(scores: NDArray[Any], histories: Sequence[Sequence[int]], targets: Sequence[set[int]]) -> float:
    lists = [top_k(row, 10, np.array(h, dtype=np.intp)).tolist() for row, h in zip(scores, histories, strict=True)]
    return float(np.mean([ndcg_at_k(r, t, 10) for r, t in zip(lists, targets, strict=True)]))


def _tune(
    fit: Callable[[float], Scorer], grid: Sequence[float], histories: Sequence[Sequence[int]], targets: Any
) -> tuple[Scorer, float]:
    """The fitted scorer whose validation NDCG@10 is best over ``grid``."""
    best: tuple[Scorer, float, float] | None = None
    for value in grid:
        scorer = fit(value)
        ndcg = _ndcg(scorer.scores(histories), histories, targets)
        if best is None or ndcg > best[2]:
            best = (scorer, value, ndcg)
    assert best is not None
    return best[0], best[1]


def ensure_model(
    data_dir: Path, model_dir: Path | None, config: TrainConfig, embedder: TextEmbedder | None, workdir: Path
) -> Path:
    """``model_dir`` if it holds a checkpoint; else train one there (or in ``workdir`` when none is given)."""
    target = model_dir or workdir
    if not (target / METADATA_FILE).is_file():
        train(data_dir, target, config, embedder)
    return target


def evaluate(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    model_dir: str | Path | None = None,
    holdout: int | None = None,
    config: TrainConfig | None = None,
    embedder: TextEmbedder | None = None,
) -> EvaluationTable:
    """Train if needed, then score every model on the test split of ``data_dir``."""
    start = time.perf_counter()
    cfg = config or TrainConfig()
    if holdout is not None:
        cfg = replace(cfg, holdout=holdout)
    with tempfile.TemporaryDirectory(prefix="creatormesh-ranking-") as tmp:
        path = ensure_model(Path(data_dir), Path(model_dir) if model_dir else None, cfg, embedder, Path(tmp))
        rec = Recommender.load(path, embedder)
    meta = rec.metadata
    trained_holdout = int(meta["data"]["holdout"])
    if holdout is not None and holdout != trained_holdout:
        raise ValueError(f"the model was trained with holdout {trained_holdout}, not {holdout}")
    data = load_dataset(data_dir, max_users=meta["data"]["max_users"])
    split = split_dataset(data, trained_holdout)
    if list(data.items) != rec.item_ids or split.counts() != meta["data"]["rows"]:
        raise ValueError("the model was trained on other data (catalogue or split differ); retrain or pass --data-dir")
    trained_seconds = float(meta.get("seconds", {}).get("total", 0.0))
    table = score_all(rec, split, data.items)
    table.details.update(
        {
            "data": data.name,
            "holdout": trained_holdout,
            "rows": split.counts(),
            "model_version": rec.version,
            "train_seconds": trained_seconds,
            "evaluate_seconds": round(time.perf_counter() - start, 1),
        }
    )
    return table


def score_all(rec: Recommender, split: Split, items: dict[str, Any]) -> EvaluationTable:
    """The six rows of the table for the test users of ``split``."""
    ids = rec.item_ids
    index = {item_id: i for i, item_id in enumerate(ids)}
    n = len(ids)
    genres = {i: frozenset(items[i].genres) for i in ids}
    train_hist = [[index[r.item_id] for r in seq] for seq in split.train.values()]
    val_users = split.eval_users("validation")
    val_hist = [[index[i] for i in split.history(u, "validation")] for u in val_users]
    val_targets = [{index[i] for i in split.targets(u, "validation")} for u in val_users]
    users = split.eval_users("test")
    hist = [[index[i] for i in split.history(u, "test")] for u in users]
    targets = [split.targets(u, "test") for u in users]
    details: dict[str, Any] = {}
    scorers: list[Scorer] = [Popularity.fit(train_hist, n)]
    knn, details["knn_neighbours"] = _tune(
        lambda k: ItemKNN.fit(train_hist, n, int(k)), KNN_NEIGHBOURS, val_hist, val_targets
    )
    gram = EASE.gram(train_hist, n)
    ease, details["ease_lambda"] = _tune(lambda lam: EASE.from_gram(gram, lam), EASE_LAMBDAS, val_hist, val_targets)
    scorers += [knn, ease]
    rows: dict[str, dict[str, float]] = {}
    for scorer in scorers:
        scores = np.concatenate(
            [scorer.scores(hist[lo : lo + 256]) for lo in range(0, len(users), 256)]
            or [np.zeros((0, n), dtype=np.float32)]
        )
        rows[scorer.name] = score_lists(_lists(scores, hist, ids), targets, n, genres)
    contexts = [
        UserContext(u, top_genres([r.item_id for r in split.train.get(u, [])], items), tuple(split.history(u, "test")))
        for u in users
    ]
    learned: dict[str, list[list[str]]] = {"two-tower": [], "sequence": [], "blend": []}
    for lo in range(0, len(contexts), 256):
        tt, seq = rec.catalogue_scores(contexts[lo : lo + 256])
        h = hist[lo : lo + 256]
        learned["two-tower"] += _lists(tt, h, ids)
        learned["sequence"] += _lists(seq, h, ids)
        learned["blend"] += _lists(rec.learned_scores(tt, seq), h, ids)
    for name, lists in learned.items():
        rows[name] = score_lists(lists, targets, n, genres)
    details["blend"] = rec.blend
    details["validation"] = rec.metadata.get("validation", {})
    return EvaluationTable(rows=rows, users=len(users), catalogue=n, details=details)


def describe(table: EvaluationTable) -> str:
    """The table plus a line of context (data, users, hyper-parameters, runtime)."""
    d = table.details
    return (
        table.markdown()
        + f"\n\n{table.users} test users, {table.catalogue} items, data {d.get('data')}, holdout {d.get('holdout')}, "
        + f"rows {json.dumps(d.get('rows'))}; EASE λ={d.get('ease_lambda')}, item-kNN k={d.get('knn_neighbours')}, "
        + f"blend {json.dumps(d.get('blend'))}; model {d.get('model_version')} "
        + f"(training {d.get('train_seconds')} s), evaluation {d.get('evaluate_seconds')} s"
    )
