"""Interaction data in the MovieLens CSV layout and the time-ordered split per user.

A data directory holds ``ratings.csv`` (userId,movieId,rating,timestamp), ``movies.csv`` (movieId,title,genres)
and optionally ``tags.csv`` (userId,movieId,tag,timestamp). Every rating is an implicit interaction. Ids are
kept as text; genres and tags are lower-cased (tags become hashtags: whitespace → ``-``).
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

DEFAULT_DATA_DIR = Path(__file__).parent / "data" / "movielens-small"
NO_GENRE = "(no genres listed)"
MAX_TAGS_PER_ITEM = 10
INTEREST_COUNT = 3


class Rating(NamedTuple):
    """One interaction of a user with an item."""

    item_id: str
    rating: float
    timestamp: int


@dataclass(frozen=True)
class Item:
    """Catalogue entry: title, lower-case genres and hashtags (most used first)."""

    item_id: str
    title: str = ""
    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The text the sentence embedder sees: ``"title. tag, tag"``."""
        return f"{self.title}. {', '.join(self.tags)}".strip()


@dataclass
class Dataset:
    """Items (ordered by id) and each user's interactions, oldest first (ties by item id)."""

    name: str
    items: dict[str, Item]
    sequences: dict[str, list[Rating]]

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences.values())

    @property
    def users(self) -> list[str]:
        return list(self.sequences)


@dataclass
class Split:
    """Per-user train / validation / test interactions (time-ordered)."""

    holdout: int
    train: dict[str, list[Rating]]
    validation: dict[str, list[Rating]] = field(default_factory=dict)
    test: dict[str, list[Rating]] = field(default_factory=dict)

    def history(self, user_id: str, stage: str) -> list[str]:
        """Item ids a model may see before predicting ``stage`` ("validation": train; "test": train+validation)."""
        seq = [r.item_id for r in self.train.get(user_id, [])]
        if stage == "test":
            seq += [r.item_id for r in self.validation.get(user_id, [])]
        return seq

    def targets(self, user_id: str, stage: str) -> set[str]:
        """Held-out items of ``stage`` that are not already in the user's history (those are never ranked)."""
        rows = self.test if stage == "test" else self.validation
        return {r.item_id for r in rows.get(user_id, [])} - set(self.history(user_id, stage))

    def eval_users(self, stage: str) -> list[str]:
        """Users with at least one target for ``stage``, in id order."""
        rows = self.test if stage == "test" else self.validation
        return [u for u in rows if self.targets(u, stage)]

    def counts(self) -> dict[str, int]:
        return {
            "train": sum(len(v) for v in self.train.values()),
            "validation": sum(len(v) for v in self.validation.values()),
            "test": sum(len(v) for v in self.test.values()),
        }


def natural_key(value: str) -> tuple[int, int, str]:
    """Numeric ids by value, then any other ids as text."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def parse_genres(raw: str) -> tuple[str, ...]:
    genres = (g.strip().lower() for g in raw.split("|"))
    return tuple(dict.fromkeys(g for g in genres if g and g != NO_GENRE))


def hashtag(raw: str) -> str:
    """A free-text tag as a lower-case hashtag without ``#`` ("Highly quotable" → "highly-quotable")."""
    return re.sub(r"\s+", "-", raw.strip().lower().lstrip("#").strip())


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def load_dataset(data_dir: str | Path = DEFAULT_DATA_DIR, *, max_users: int | None = None) -> Dataset:
    """Read a MovieLens-layout directory; ``max_users`` keeps the first N users by id (and the items they touched)."""
    root = Path(data_dir)
    ratings_path = root / "ratings.csv"
    if not ratings_path.is_file():
        raise FileNotFoundError(f"no ratings.csv in {root}")
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for row in _rows(ratings_path):
        by_user[row["userId"]].append(
            Rating(row["movieId"], float(row.get("rating") or 1.0), int(float(row["timestamp"])))
        )
    users = sorted(by_user, key=natural_key)
    if max_users is not None:
        users = users[:max_users]
    sequences = {u: sorted(by_user[u], key=lambda r: (r.timestamp, natural_key(r.item_id))) for u in users}
    used = {r.item_id for seq in sequences.values() for r in seq}

    titles: dict[str, tuple[str, tuple[str, ...]]] = {}
    movies_path = root / "movies.csv"
    if movies_path.is_file():
        for row in _rows(movies_path):
            if row["movieId"] in used:
                titles[row["movieId"]] = (row.get("title", "").strip(), parse_genres(row.get("genres", "")))
    tag_counts: dict[str, Counter[str]] = defaultdict(Counter)
    tags_path = root / "tags.csv"
    if tags_path.is_file():
        for row in _rows(tags_path):
            tag = hashtag(row.get("tag", ""))
            if row["movieId"] in used and tag:
                tag_counts[row["movieId"]][tag] += 1

    items: dict[str, Item] = {}
    for item_id in sorted(used, key=natural_key):
        title, genres = titles.get(item_id, ("", ()))
        ranked = sorted(tag_counts[item_id].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TAGS_PER_ITEM]
        items[item_id] = Item(item_id, title, genres, tuple(t for t, _ in ranked))
    return Dataset(name=root.name, items=items, sequences=sequences)


def split_dataset(data: Dataset, holdout: int = 5, min_train: int = 3) -> Split:
    """Last ``holdout`` interactions of each user → test, the ``holdout`` before → validation, the rest → train.

    A user keeps at least ``min_train`` interactions in train: short users lose validation rows first, then
    test rows; a user with ``min_train`` or fewer interactions is train-only.
    """
    if holdout < 1:
        raise ValueError("holdout must be at least 1")
    split = Split(holdout=holdout, train={})
    for user, seq in data.sequences.items():
        n = len(seq)
        n_test = max(0, min(holdout, n - min_train))
        n_val = max(0, min(holdout, n - min_train - n_test))
        n_train = n - n_test - n_val
        split.train[user] = seq[:n_train]
        if n_val:
            split.validation[user] = seq[n_train : n_train + n_val]
        if n_test:
            split.test[user] = seq[n - n_test :]
    return split


def top_genres(item_ids: Sequence[str], items: dict[str, Item], n: int = INTEREST_COUNT) -> tuple[str, ...]:
    """Simulated signup interests: the ``n`` most frequent genres among ``item_ids`` (ties by name)."""
    counts: Counter[str] = Counter(g for i in item_ids if i in items for g in items[i].genres)
    return tuple(g for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])
