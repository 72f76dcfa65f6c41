"""Batch export: the learned blend's top-K items per user as CSV (user_id,item_id,rank)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from creatormesh.common.embeddings import TextEmbedder
from creatormesh.ranking.data import DEFAULT_DATA_DIR, load_dataset, top_genres
from creatormesh.ranking.metrics import top_k
from creatormesh.ranking.recommender import Recommender, UserContext

HEADER = ("user_id", "item_id", "rank")
BATCH = 256


def export_recommendations(
    out: str | Path,
    model_dir: str | Path,
    data_dir: str | Path = DEFAULT_DATA_DIR,
    users: Sequence[str] | None = None,
    k: int = 50,
    embedder: TextEmbedder | None = None,
) -> int:
    """Write the top ``k`` of each user (every user of ``data_dir`` — the checkpoint's ``max_users`` slice of it —
    or ``users``), excluding the items in the user's history. Users absent from the data are scored as cold
    users (no history, no interests). Returns the number of rows written."""
    if k < 1:
        raise ValueError("k must be at least 1")
    rec = Recommender.load(model_dir, embedder)
    data = load_dataset(data_dir, max_users=rec.metadata["data"]["max_users"] if users is None else None)
    wanted = list(data.sequences) if users is None else list(dict.fromkeys(users))
    contexts = []
    for user in wanted:
        history = tuple(r.item_id for r in data.sequences.get(user, []))
        contexts.append(UserContext(user, top_genres(history, data.items), history))
    index = {item_id: i for i, item_id in enumerate(rec.item_ids)}
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for lo in range(0, len(contexts), BATCH):
            batch = contexts[lo : lo + BATCH]
            tt, seq = rec.catalogue_scores(batch)
            blend = rec.learned_scores(tt, seq)
            for ctx, scores in zip(batch, blend, strict=True):
                seen = np.array([index[i] for i in ctx.history if i in index], dtype=np.intp)
                for rank, i in enumerate(top_k(scores, k, seen), start=1):
                    writer.writerow((ctx.user_id, rec.item_ids[i], rank))
                    rows += 1
    return rows
