"""Items -> model inputs, one block per modality with a presence mask (missing modalities are normal)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from creatormesh.viral_scoring.items import Behaviour, Item
from creatormesh.viral_scoring.text_features import TEXT_STAT_NAMES, text_stats
from creatormesh.viral_scoring.trends import TREND_NAMES, strength_features

if TYPE_CHECKING:
    from creatormesh.viral_scoring.visual import KeyframeEncoder

log = logging.getLogger(__name__)

MODALITIES = ("text", "visual", "audio", "behavioural", "temporal")
CATEGORIES = (1, 2, 10, 15, 17, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29, 43)
STAT_NAMES = TEXT_STAT_NAMES + tuple(f"category_{c}" for c in CATEGORIES) + ("category_other",)
BEHAVIOUR_NAMES = (
    "log_likes",
    "log_dislikes",
    "log_comments",
    "like_ratio",
    "comments_per_like",
    "log_shares",
    "log_replays",
    "early_ctr",
    "watch_through",
    "log_observed_hours",
    "known_likes",
    "known_comments",
    "known_shares",
    "known_replays",
    "known_ctr",
    "known_watch_through",
)
TEMPORAL_NAMES = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "weekend", "known_time", *TREND_NAMES)
EMBEDDING_DIM = 384

#: a function from texts to unit-length sentence embeddings (n, EMBEDDING_DIM)
Embed = Callable[[Sequence[str]], NDArray[np.float32]]
#: tags (+ creator to exclude) -> trend feature vector
TrendLookup = Callable[[Sequence[str], str], NDArray[np.float32]]


def _import_media() -> tuple[int, int]:
    from creatormesh.viral_scoring.audio import AUDIO_DIM
    from creatormesh.viral_scoring.visual import ENCODER_DIM, VISUAL_DIM

    return VISUAL_DIM + ENCODER_DIM, AUDIO_DIM


#: the visual input: frame measurements, then the (projected) key-frame encoder embedding, zeros without one
VISUAL_DIM, AUDIO_DIM = _import_media()


@dataclass(frozen=True)
class FeatureBatch:
    embedding: NDArray[np.float32]  # (n, 384) text embedding (zeros when not computed)
    stats: NDArray[np.float32]  # (n, len(STAT_NAMES)) text statistics + category
    visual: NDArray[np.float32]
    audio: NDArray[np.float32]
    behavioural: NDArray[np.float32]
    temporal: NDArray[np.float32]
    mask: NDArray[np.bool_]  # (n, 5) modality present, in MODALITIES order

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def select(self, idx: NDArray[np.int64] | Sequence[int]) -> FeatureBatch:
        i = np.asarray(idx, dtype=np.int64)
        return FeatureBatch(
            self.embedding[i], self.stats[i], self.visual[i], self.audio[i], self.behavioural[i], self.temporal[i],
            self.mask[i],
        )  # fmt: skip

    def arrays(self) -> tuple[NDArray[np.generic], ...]:
        return (self.embedding, self.stats, self.visual, self.audio, self.behavioural, self.temporal, self.mask)

    def without(self, modality: str) -> FeatureBatch:
        """The same batch with one modality masked out (e.g. content-only scoring)."""
        mask = self.mask.copy()
        mask[:, MODALITIES.index(modality)] = False
        return replace(self, mask=mask)

    @staticmethod
    def concat(batches: Sequence[FeatureBatch]) -> FeatureBatch:
        joined = [np.concatenate(parts) for parts in zip(*(b.arrays() for b in batches), strict=True)]
        return FeatureBatch(*joined)


def embedding_text(item: Item) -> str:
    """What the sentence embedding reads: title, tags and the start of the transcript/description (~100 tokens:
    the embedding is most of the cost of scoring, and grows with the text)."""
    body = (item.transcript or item.description)[:300]
    tags = ", ".join(item.tags[:10])
    return "\n".join(p for p in (item.title, tags, body) if p)


def stats_vector(item: Item) -> NDArray[np.float32]:
    one_hot = np.zeros(len(CATEGORIES) + 1, dtype=np.float32)
    if item.category_id is not None:
        one_hot[CATEGORIES.index(item.category_id) if item.category_id in CATEGORIES else -1] = 1
    stats = text_stats(item.title, item.description, item.tags, item.transcript, item.category_id)
    return np.concatenate([stats, one_hot])


def behaviour_vector(b: Behaviour) -> tuple[NDArray[np.float32], bool]:
    """Log counts and rates; views are the label and never an input."""

    def log_count(x: int | None) -> float:
        return math.log1p(x) / 16 if x is not None else 0.0

    likes, dislikes, comments = b.likes, b.dislikes, b.comment_count
    like_ratio = likes / (likes + dislikes) if likes is not None and dislikes is not None and likes + dislikes else 0.0
    per_like = min(comments / likes, 1.0) if comments is not None and likes else 0.0
    values = [
        log_count(likes),
        log_count(dislikes),
        log_count(comments),
        like_ratio,
        per_like,
        log_count(b.shares),
        log_count(b.replays),
        b.early_ctr or 0.0,
        b.watch_through or 0.0,
        math.log1p(b.observed_after_hours) / 6 if b.observed_after_hours is not None else 0.0,
        float(likes is not None),
        float(comments is not None),
        float(b.shares is not None),
        float(b.replays is not None),
        float(b.early_ctr is not None),
        float(b.watch_through is not None),
    ]
    return np.asarray(values, dtype=np.float32), b.present()


def temporal_vector(published: datetime | None, trend: NDArray[np.float32]) -> NDArray[np.float32]:
    if published is None:
        clock = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    else:
        hour = (published.hour + published.minute / 60) / 24 * 2 * math.pi
        day = published.weekday() / 7 * 2 * math.pi
        clock = [math.sin(hour), math.cos(hour), math.sin(day), math.cos(day), float(published.weekday() >= 5), 1.0]
    return np.concatenate([np.asarray(clock, dtype=np.float32), trend])


def media_vectors(
    item: Item, encoder: KeyframeEncoder | None = None
) -> tuple[NDArray[np.float32] | None, NDArray[np.float32] | None]:
    """Key-frame/video measurements (+ the key-frame encoder's embedding when one is configured) and audio
    features, None where the item has no such media."""
    visual = audio = None
    media = item.media
    if media.video is not None or media.keyframes:
        from creatormesh.viral_scoring.visual import visual_input

        visual = visual_input(media.video, media.keyframes, encoder)
    source = media.audio or media.video
    if source is not None:
        from creatormesh.viral_scoring.audio import audio_features

        audio = audio_features(source)
    return visual, audio


def featurize(
    items: Sequence[Item],
    *,
    embed: Embed | None,
    trends: TrendLookup | None = None,
    trend_features: Sequence[NDArray[np.float32]] | None = None,
    media: bool = True,
    keyframe_encoder: KeyframeEncoder | None = None,
) -> FeatureBatch:
    """Features of ``items``. ``embed`` None skips the sentence embedding (the light model does not use it).

    Trend features come from ``trend_features`` (precomputed, training) or ``trends`` (serving), else zeros."""
    n = len(items)
    mask = np.zeros((n, len(MODALITIES)), dtype=np.bool_)
    stats = np.zeros((n, len(STAT_NAMES)), dtype=np.float32)
    visual = np.zeros((n, VISUAL_DIM), dtype=np.float32)
    audio = np.zeros((n, AUDIO_DIM), dtype=np.float32)
    behavioural = np.zeros((n, len(BEHAVIOUR_NAMES)), dtype=np.float32)
    temporal = np.zeros((n, len(TEMPORAL_NAMES)), dtype=np.float32)
    for i, item in enumerate(items):
        mask[i, 0] = bool(item.title or item.description or item.transcript or item.tags)
        stats[i] = stats_vector(item)
        behavioural[i], mask[i, 3] = behaviour_vector(item.behaviour)
        if trend_features is not None:
            trend = trend_features[i]
        elif trends is not None:
            trend = trends(item.tags, item.creator_id or item.channel_title)
        else:
            trend = strength_features([])
        temporal[i] = temporal_vector(item.publish_time, trend)
        mask[i, 4] = item.publish_time is not None or bool(item.tags)
        if media:
            v, a = media_vectors(item, keyframe_encoder)
            if v is not None:
                visual[i], mask[i, 1] = v, True
            if a is not None:
                audio[i], mask[i, 2] = a, True
    if embed is not None and n:
        embedding = embed([embedding_text(item) for item in items])
    else:
        embedding = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    return FeatureBatch(embedding, stats, visual, audio, behavioural, temporal, mask)
