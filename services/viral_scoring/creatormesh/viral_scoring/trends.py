"""Hashtag trend strength: how many other creators used an item's tags recently.

The same measure feeds the TrendMatch input features (computed from recently scored content while serving, and
from the other videos trending in the same days while training) and the T proxy label.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

import numpy as np

TREND_NAMES = ("trend_max", "trend_mean", "trend_share")


def normalise_tag(tag: str) -> str:
    return " ".join(tag.lower().lstrip("#").split())


def strength_features(strengths: Sequence[int]) -> np.ndarray:
    """(max, mean, share of tags used by someone else), log-scaled into roughly [0, 1]."""
    if not strengths:
        return np.zeros(len(TREND_NAMES), dtype=np.float32)
    arr = np.asarray(strengths, dtype=np.float32)
    return np.array(
        [math.log1p(float(arr.max())) / 4.0, float(np.log1p(arr).mean()) / 4.0, float((arr > 0).mean())],
        dtype=np.float32,
    )


class TrendWindow:
    """Tags seen in the last ``window_seconds`` with the creators that used them (thread-safe, in memory)."""

    def __init__(self, window_seconds: float = 72 * 3600, max_events: int = 200_000) -> None:
        self.window_seconds = window_seconds
        self._events: deque[tuple[float, str, tuple[str, ...]]] = deque(maxlen=max_events)
        self._users: dict[str, dict[str, int]] = defaultdict(dict)  # tag -> creator -> uses
        self._lock = threading.Lock()

    def add(self, creator: str, tags: Iterable[str], at: float | None = None) -> None:
        at = time.time() if at is None else at
        norm = tuple(dict.fromkeys(t for t in (normalise_tag(x) for x in tags) if t))
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self._forget(self._events[0])
            self._events.append((at, creator, norm))
            for tag in norm:
                users = self._users[tag]
                users[creator] = users.get(creator, 0) + 1
            self._expire(at)

    def strengths(self, tags: Iterable[str], exclude_creator: str = "") -> list[int]:
        """For each tag, the number of other creators that used it within the window."""
        out = []
        with self._lock:
            for tag in dict.fromkeys(normalise_tag(t) for t in tags):
                if not tag:
                    continue
                users = self._users.get(tag, {})
                out.append(len(users) - (1 if exclude_creator in users else 0))
        return out

    def features(self, tags: Iterable[str], exclude_creator: str = "") -> np.ndarray:
        return strength_features(self.strengths(tags, exclude_creator))

    def __len__(self) -> int:
        return len(self._events)

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window_seconds:
            self._forget(self._events.popleft())

    def _forget(self, event: tuple[float, str, tuple[str, ...]]) -> None:
        _, creator, tags = event
        for tag in tags:
            users = self._users.get(tag)
            if users is None or creator not in users:
                continue
            users[creator] -= 1
            if users[creator] <= 0:
                del users[creator]
            if not users:
                del self._users[tag]
