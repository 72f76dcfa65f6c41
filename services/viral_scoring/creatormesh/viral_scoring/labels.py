"""Labels for training: the propagation label and proxy labels for the five subscores.

All labels are percentiles within a source file (so GB and CA counts, collected differently, are comparable)
in [0, 1]; NaN means unknown and is masked out of the loss.

- y (propagation): percentile of views.
- E (emotion intensity): reactions per view, (likes + dislikes) / views — how strongly people reacted.
- H (hook strength): views per hour between publishing and the trending snapshot — early velocity, what a hook
  buys. Unknown without a publish time.
- R (replicability): how many videos of the same channel trended in the same source — a format that trends
  again and again is templateable.
- S (share trigger): comments per view — content that makes people respond and pass it on.
- T (trend match): trend strength of the video's tags among other channels' videos trending within a day of it
  (the same measure the T input features use while serving).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from creatormesh.viral_scoring.data import Record
from creatormesh.viral_scoring.trends import normalise_tag, strength_features

SUBSCORES = ("E", "H", "R", "S", "T")


@dataclass(frozen=True)
class Labels:
    y: NDArray[np.float32]  # (n,)
    sub: NDArray[np.float32]  # (n, 5), NaN = unknown


def percentile(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """Average-rank percentile in [0, 1] of the finite values; NaN stays NaN."""
    out = np.full(values.shape, np.nan, dtype=np.float32)
    ok = np.isfinite(values)
    n = int(ok.sum())
    if n == 1:
        out[ok] = 0.5
    elif n > 1:
        out[ok] = ((rankdata(values[ok]) - 1) / (n - 1)).astype(np.float32)
    return out


def trend_strengths(records: list[Record]) -> list[list[int]]:
    """Per record: for each tag, the number of other channels in the same source that used it within a day."""
    by_day: dict[tuple[str, object], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_day[(r.source, r.snapshot)].append(i)
    users: dict[tuple[str, object], dict[str, set[str]]] = {}
    for key, idx in by_day.items():
        tags: dict[str, set[str]] = defaultdict(set)
        for i in idx:
            for t in records[i].item.tags:
                tags[normalise_tag(t)].add(records[i].item.channel_title)
        users[key] = tags
    out = []
    for r in records:
        near: dict[str, set[str]] = defaultdict(set)
        for delta in (-1, 0, 1):
            day = r.snapshot + timedelta(days=delta) if r.snapshot is not None else None
            for tag, chans in users.get((r.source, day), {}).items():
                near[tag] |= chans
        own = r.item.channel_title
        out.append([len(near.get(t, set()) - {own}) for t in dict.fromkeys(normalise_tag(x) for x in r.item.tags)])
    return out


def hours_to_snapshot(r: Record) -> float:
    if r.item.publish_time is None or r.snapshot is None:
        return float("nan")
    end = datetime.combine(r.snapshot + timedelta(days=1), time(0), tzinfo=UTC)
    hours = (end - r.item.publish_time).total_seconds() / 3600
    return hours if hours > 0 else float("nan")


def make_labels(records: list[Record], strengths: list[list[int]] | None = None) -> Labels:
    strengths = trend_strengths(records) if strengths is None else strengths
    n = len(records)
    y = np.zeros(n, dtype=np.float32)
    sub = np.full((n, len(SUBSCORES)), np.nan, dtype=np.float32)
    per_channel = Counter((r.source, r.item.channel_title) for r in records)
    sources: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        sources[r.source].append(i)
    for idx in sources.values():
        rs = [records[i] for i in idx]
        views = np.array([max(r.views, 1) for r in rs], dtype=np.float64)
        b = [r.item.behaviour for r in rs]
        reactions = np.array(
            [np.nan if x.likes is None or x.dislikes is None else x.likes + x.dislikes for x in b], dtype=np.float64
        )
        comments = np.array([np.nan if x.comment_count is None else x.comment_count for x in b], dtype=np.float64)
        hours = np.array([hours_to_snapshot(r) for r in rs], dtype=np.float64)
        channel = np.array([per_channel[(r.source, r.item.channel_title)] for r in rs], dtype=np.float64)
        trend = np.array([strength_features(strengths[i])[1] for i in idx], dtype=np.float64)
        y[idx] = percentile(np.log(views))
        sub[idx, 0] = percentile(reactions / views)
        sub[idx, 1] = percentile(np.log(views) - np.log(hours))
        sub[idx, 2] = percentile(channel)
        sub[idx, 3] = percentile(comments / views)
        sub[idx, 4] = percentile(trend)
    return Labels(y=y, sub=sub)
