"""Records -> features + labels, and the held-out split grouped by channel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from creatormesh.common.embeddings import TextEmbedder, embed_texts
from creatormesh.viral_scoring.data import Record, load_dataset
from creatormesh.viral_scoring.features import FeatureBatch, featurize
from creatormesh.viral_scoring.labels import Labels, make_labels, trend_strengths
from creatormesh.viral_scoring.trends import strength_features

DEFAULT_TEXT_CACHE = Path(".creatormesh/viral_scoring/text-embeddings")


@dataclass(frozen=True)
class Prepared:
    records: list[Record]
    features: FeatureBatch
    labels: Labels

    @property
    def channels(self) -> list[str]:
        return [r.item.channel_title for r in self.records]


def prepare(
    data_dir: Path,
    embedder: TextEmbedder | None = None,
    *,
    text_cache: Path | None = DEFAULT_TEXT_CACHE,
    max_records: int | None = None,
) -> Prepared:
    records = load_dataset(data_dir)
    if max_records is not None:
        records = records[:max_records]
    strengths = trend_strengths(records)
    features = featurize(
        [r.item for r in records],
        embed=lambda texts: embed_texts(texts, embedder, text_cache),
        trend_features=[strength_features(s) for s in strengths],
        media=False,
    )
    return Prepared(records, features, make_labels(records, strengths))


def channel_bucket(channel: str, seed: int = 0) -> float:
    digest = hashlib.sha256(f"{seed}\x00{channel.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_channel(
    channels: list[str], test_fraction: float, seed: int = 0, exclude: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(rest, held out): a channel's videos are all on one side (a stable hash of the channel name)."""
    idx = np.arange(len(channels)) if exclude is None else exclude
    held = np.array([channel_bucket(channels[i], seed) < test_fraction for i in idx], dtype=bool)
    return idx[~held], idx[held]


def splits(
    channels: list[str], test_fraction: float, val_fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(train, validation, test) indices, each channel on one side: test first, then validation from the rest."""
    rest, test = split_by_channel(channels, test_fraction, seed)
    train, val = split_by_channel(channels, val_fraction, seed + 1, exclude=rest)
    return train, val, test
