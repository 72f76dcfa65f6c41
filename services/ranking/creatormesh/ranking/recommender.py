"""Inference over a trained checkpoint: item and user vectors, calibrated two-tower and sequence scores and
their validated blend. Read-only after loading, so concurrent readers are safe."""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file

from creatormesh.common.embeddings import TextEmbedder, default_embedder
from creatormesh.ranking.models import (
    FeatureSpace,
    SASRec,
    SequenceConfig,
    TwoTower,
    TwoTowerConfig,
    left_pad,
)
from creatormesh.ranking.train import ITEMS_FILE, METADATA_FILE, SEQUENCE_FILE, TWO_TOWER_FILE

NEUTRAL = 0.5
_LOGIT_CLIP = 1e-12


@dataclass(frozen=True)
class ItemContent:
    item_id: str
    genres: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    text: str = ""
    engagement_rate: float | None = None  # in [0, 1]
    quality: float | None = None  # in [0, 1]
    title: str = ""


@dataclass(frozen=True)
class UserContext:
    user_id: str
    interests: tuple[str, ...] = ()  # declared/learned interests (genres/hashtags, lower-case)
    history: tuple[str, ...] = ()  # item ids, OLDEST first (may contain ids the models never saw)


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)


def _logit(p: NDArray[np.floating]) -> NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=np.float64), _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


HIDDEN_CACHE_SIZE = 4096  # sequence states by recent history (a page asks twice; feeds are re-asked)


class Recommender:
    """A loaded checkpoint (see ``creatormesh.ranking.train``)."""

    version: str
    dim: int

    def __init__(self, path: Path, embedder: TextEmbedder | None = None) -> None:
        meta: dict[str, Any] = json.loads((path / METADATA_FILE).read_text())
        self.metadata = meta
        self.version = meta["version"]
        self.space = FeatureSpace.from_json(meta["vocabularies"])
        self.two_tower = TwoTower(TwoTowerConfig(**meta["config"]["two_tower"]))
        self.two_tower.load_state_dict(load_file(str(path / TWO_TOWER_FILE)))
        self.two_tower.eval()
        self.sequence = SASRec(SequenceConfig(**meta["config"]["sequence"]))
        self.sequence.load_state_dict(load_file(str(path / SEQUENCE_FILE)))
        self.sequence.eval()
        self.dim = self.two_tower.config.dim
        tensors = load_numpy(str(path / ITEMS_FILE))
        self._item_vectors = tensors["item_vectors"].astype(np.float32)
        self._text = tensors["text_embeddings"].astype(np.float32)
        self._seq_table = torch.from_numpy(tensors["sequence_embeddings"].astype(np.float32))
        self._seq_table_t = np.ascontiguousarray(self._seq_table.numpy().T)
        # row 0 = padding, so history ids can index it directly
        self._seq_table_padded = torch.cat([torch.zeros(1, self._seq_table.shape[1]), self._seq_table])
        self._hidden_cache: OrderedDict[tuple[str, ...], tuple[torch.Tensor, bool]] = OrderedDict()
        self._hidden_lock = threading.Lock()
        self._items: list[dict[str, Any]] = meta["items"]
        self.item_ids = [row["id"] for row in self._items]
        self._index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self._item_genres = [frozenset(row["genres"]) for row in self._items]
        self._item_genre_tuples = [tuple(row["genres"]) for row in self._items]
        self._item_tags = [frozenset(row["tags"]) for row in self._items]
        self._vocab = np.array([self.space.item_index(i) for i in self.item_ids], dtype=np.int64)
        cal = meta["calibration"]
        self._tt_cal = (float(cal["two_tower"]["mean"]), float(cal["two_tower"]["std"]))
        self._seq_cal = (float(cal["sequence"]["mean"]), float(cal["sequence"]["std"]))
        self.blend = {k: float(v) for k, v in meta["blend"].items()}
        self.default_quality = float(meta["features"]["default_quality"])
        self._embedder = embedder
        self._embedder_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, embedder: TextEmbedder | None = None) -> Recommender:
        """Load a checkpoint directory; the text embedder (None = ``default_embedder()``) is only loaded when
        an item's text is not in the checkpoint."""
        return cls(Path(path), embedder)

    # --- items -----------------------------------------------------------------------------------------------

    def catalog(self) -> list[ItemContent]:
        """The trained catalogue: genres, tags as hashtags, the embedded text, title and quality prior."""
        return [
            ItemContent(
                item_id=row["id"],
                genres=tuple(row["genres"]),
                hashtags=tuple(row["tags"]),
                text=row["text"],
                quality=float(row["quality"]),
                title=row["title"],
            )
            for row in self._items
        ]

    def _cached(self, item: ItemContent) -> int | None:
        """Catalogue position of ``item`` when its content is what the checkpoint stored (else None)."""
        i = self._index.get(item.item_id)
        if i is None or item.engagement_rate is not None:
            return None
        if item.text and item.text != self._items[i]["text"]:
            return None
        if frozenset(g.lower() for g in item.genres) != self._item_genres[i]:
            return None
        if frozenset(t.lower().lstrip("#") for t in item.hashtags) != self._item_tags[i]:
            return None
        if item.quality is not None and abs(item.quality - float(self._items[i]["quality"])) > 1e-6:
            return None
        return i

    def _embedder_instance(self) -> TextEmbedder:
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = default_embedder()
            if self._embedder.dimension != self._text.shape[1]:
                raise ValueError(
                    f"text embedder gives {self._embedder.dimension}-d vectors, the checkpoint "
                    f"{self.metadata['embedder']['key']} {self._text.shape[1]}-d"
                )
            return self._embedder

    def _texts(self, items: Sequence[ItemContent]) -> NDArray[np.float32]:
        """Text embeddings: the checkpoint's when the text is unchanged, else embedded (memoised for this call)."""
        out = np.zeros((len(items), self._text.shape[1]), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for k, item in enumerate(items):
            i = self._index.get(item.item_id)
            text = item.text or f"{item.title}. {', '.join(item.hashtags)}".strip()
            if i is not None and text == self._items[i]["text"]:
                out[k] = self._text[i]
            else:
                todo.setdefault(text, []).append(k)
        if todo:
            texts = list(todo)
            vectors = self._embedder_instance().embed(texts)
            for text, vector in zip(texts, vectors, strict=True):
                out[todo[text]] = vector
        return out

    def item_vectors(self, items: Sequence[ItemContent]) -> NDArray[np.float32]:
        """(n, dim) unit-norm item-tower vectors: cached for unchanged known items, else from id (OOV for
        unknown ids) and content."""
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        fresh: list[int] = []
        for k, item in enumerate(items):
            i = self._cached(item)
            if i is None:
                fresh.append(k)
            else:
                out[k] = self._item_vectors[i]
        if fresh:
            subset = [items[k] for k in fresh]
            space = self.space
            rows = []
            for item in subset:
                i = self._index.get(item.item_id)
                count = float(self._items[i]["count"]) if i is not None else 0.0
                prior = float(self._items[i]["quality"]) if i is not None else self.default_quality
                quality = prior if item.quality is None else float(item.quality)
                rows.append(space.engagement(count, quality, item.engagement_rate))
            with torch.inference_mode():
                vectors = self.two_tower.item(
                    torch.tensor([space.item_index(item.item_id) for item in subset], dtype=torch.long),
                    torch.from_numpy(np.stack([space.genre_vector(item.genres) for item in subset])),
                    torch.from_numpy(np.stack([space.tag_vector(item.hashtags) for item in subset])),
                    torch.from_numpy(self._texts(subset)),
                    torch.from_numpy(np.stack(rows)),
                )
            out[fresh] = vectors.numpy()
        return out

    # --- users -----------------------------------------------------------------------------------------------

    def _interests(self, interests: Sequence[str]) -> NDArray[np.float32]:
        return np.concatenate([self.space.genre_vector(interests), self.space.tag_vector(interests)])

    def user_vectors(self, users: Sequence[UserContext]) -> NDArray[np.float32]:
        """(n, dim) unit-norm user-tower vectors (unknown users: interests and history only)."""
        if not users:
            return np.zeros((0, self.dim), dtype=np.float32)
        hist = left_pad([[self.space.item_index(i) for i in u.history] for u in users], self.two_tower.config.history)
        with torch.inference_mode():
            vectors = self.two_tower.user(
                torch.tensor([self.space.user_index(u.user_id) for u in users], dtype=torch.long),
                torch.from_numpy(np.stack([self._interests(u.interests) for u in users])),
                torch.from_numpy(hist),
            )
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)

    def user_vector(self, user: UserContext) -> NDArray[np.float32]:
        """(dim,) unit-norm user-tower vector."""
        vector: NDArray[np.float32] = self.user_vectors([user])[0]
        return vector

    def two_tower_scores(self, user_vec: NDArray[Any], item_vecs: NDArray[Any]) -> NDArray[np.float64]:
        """Calibrated two-tower scores in [0, 1] (fixed logistic of the standardised cosine).
        Works row-wise for a (users, dim) matrix of user vectors too."""
        raw = np.asarray(item_vecs, dtype=np.float64) @ np.asarray(user_vec, dtype=np.float64).T
        mean, std = self._tt_cal
        return _sigmoid((raw.T - mean) / std)

    # --- sequence --------------------------------------------------------------------------------------------

    @property
    def sequence_dim(self) -> int:
        return int(self._seq_table.shape[1])

    def _hidden(self, users: Sequence[UserContext]) -> tuple[torch.Tensor, NDArray[np.bool_]]:
        """Last-position SASRec states (n, d) and whether each user had any known history item. Small batches
        (the serving path) go through a cache keyed by the last ``max_len`` known history items."""
        if len(users) > HIDDEN_CACHE_SIZE // 4:  # offline scoring of many users: nothing to reuse
            return self._encode([u.history for u in users])
        keys = [tuple(i for i in u.history if i in self._index)[-self.sequence.config.max_len :] for u in users]
        states: list[tuple[torch.Tensor, bool] | None] = [None] * len(keys)
        with self._hidden_lock:
            for i, key in enumerate(keys):
                hit = self._hidden_cache.get(key)
                if hit is not None:
                    self._hidden_cache.move_to_end(key)
                    states[i] = hit
        missing = [i for i, state in enumerate(states) if state is None]
        if missing:
            hidden, has = self._encode([keys[i] for i in missing])
            with self._hidden_lock:
                for row, i in enumerate(missing):
                    states[i] = self._hidden_cache[keys[i]] = (hidden[row], bool(has[row]))
                while len(self._hidden_cache) > HIDDEN_CACHE_SIZE:
                    self._hidden_cache.popitem(last=False)
        done = [state for state in states if state is not None]
        return torch.stack([h for h, _ in done]), np.array([known for _, known in done], dtype=bool)

    def _encode(self, histories: Sequence[Sequence[str]]) -> tuple[torch.Tensor, NDArray[np.bool_]]:
        seqs = [[self._index[i] + 1 for i in history if i in self._index] for history in histories]
        has = np.array([bool(s) for s in seqs], dtype=bool)
        padded_ids = torch.from_numpy(left_pad(seqs, self.sequence.config.max_len))
        with torch.inference_mode():
            hidden = self.sequence.encode(self._seq_table_padded[padded_ids], padded_ids > 0)[:, -1]
        return hidden, has

    def sequence_states(self, users: Sequence[UserContext]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """(n, d) SASRec states of ``users`` and whether each had a known history item (else scores are neutral)."""
        if not users:
            return np.zeros((0, self.sequence_dim), dtype=np.float32), np.zeros(0, dtype=bool)
        hidden, has = self._hidden(users)
        return hidden.numpy(), has

    def sequence_item_vectors(self, items: Sequence[ItemContent]) -> NDArray[np.float32]:
        """(n, d) SASRec item embeddings (what a state is multiplied with to score an item)."""
        if not items:
            return np.zeros((0, self.sequence_dim), dtype=np.float32)
        return self._sequence_table(items).numpy()

    def sequence_scores_from(
        self, state: NDArray[np.float32], known: bool, item_vectors: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        """Calibrated next-item scores of items given by ``sequence_item_vectors`` for one user's state."""
        if not known:
            return np.full(item_vectors.shape[0], NEUTRAL)
        # in float64, like two_tower_scores: a float32 product's last bit depends on how many rows BLAS is given
        logits = np.asarray(item_vectors, dtype=np.float64) @ np.asarray(state, dtype=np.float64)
        scores: NDArray[np.float64] = self._calibrate_sequence(logits[None, :], np.array([True]))[0]
        return scores

    def _calibrate_sequence(self, logits: NDArray[np.float64], has: NDArray[np.bool_]) -> NDArray[np.float64]:
        mean, std = self._seq_cal
        scores = _sigmoid((logits - mean) / std)
        scores[~has] = NEUTRAL
        return scores

    def _sequence_table(self, items: Sequence[ItemContent]) -> torch.Tensor:
        """SASRec item embeddings: stored for known items with unchanged genres, else id (or OOV) + genres."""
        out = torch.zeros(len(items), self._seq_table.shape[1])
        known_at: list[int] = []
        known_rows: list[int] = []
        fresh: list[int] = []
        for k, item in enumerate(items):
            i = self._index.get(item.item_id)
            if i is not None and (
                item.genres == self._item_genre_tuples[i]
                or frozenset(g.lower() for g in item.genres) == self._item_genres[i]
            ):
                known_at.append(k)
                known_rows.append(i)
            else:
                fresh.append(k)
        if known_at:
            out[known_at] = self._seq_table[known_rows]
        if fresh:
            ids = torch.tensor([self.space.item_index(items[k].item_id) for k in fresh], dtype=torch.long)
            genres = torch.from_numpy(np.stack([self.space.genre_vector(items[k].genres) for k in fresh]))
            with torch.inference_mode():
                out[fresh] = self.sequence.item_embeddings(ids, genres)
        return out

    def sequence_scores(self, user: UserContext, items: Sequence[ItemContent]) -> NDArray[np.float64]:
        """(n,) calibrated next-item scores in [0, 1]; 0.5 for every item when no history item is known."""
        if not items:
            return np.zeros(0, dtype=np.float64)
        states, has = self.sequence_states([user])
        return self.sequence_scores_from(states[0], bool(has[0]), self.sequence_item_vectors(items))

    def sequence_top(self, user: UserContext, n: int, exclude: Collection[str] = ()) -> list[str]:
        """The ``n`` best next items among the known catalogue, leaving out ``exclude`` and the user's history
        (empty when no history item is known)."""
        states, has = self.sequence_states([user])
        return self.sequence_top_many(states, has, n, [(*exclude, *user.history)])[0]

    def sequence_top_many(
        self, states: NDArray[np.float32], has: NDArray[np.bool_], n: int, excludes: Sequence[Collection[str]]
    ) -> list[list[str]]:
        """``sequence_top`` for several users' states at once (one matrix product over the catalogue)."""
        ids = self.item_ids
        return [[ids[i] for i in top.tolist()] for top in self.sequence_top_rows(states, has, n, excludes)]

    def sequence_top_rows(
        self, states: NDArray[np.float32], has: NDArray[np.bool_], n: int, excludes: Sequence[Collection[str]]
    ) -> list[NDArray[np.intp]]:
        """``sequence_top_many`` as positions in ``item_ids``, best first."""
        out = [np.zeros(0, dtype=np.intp) for _ in range(states.shape[0])]
        if n <= 0 or not has.any():
            return out
        logits = (states @ self._seq_table_t).astype(np.float64)
        index = self._index
        for row, exclude in enumerate(excludes):
            if not has[row]:
                continue
            scores = logits[row]
            scores[[index[i] for i in exclude if i in index]] = -math.inf
            k = min(n, int(np.isfinite(scores).sum()))
            if k <= 0:
                continue
            top = np.argpartition(-scores, k - 1)[:k]
            out[row] = top[np.argsort(-scores[top], kind="stable")]
        return out

    # --- blend -----------------------------------------------------------------------------------------------

    def learned_scores(self, two_tower: NDArray[Any], sequence: NDArray[Any]) -> NDArray[np.float64]:
        """The blend tuned on validation: logistic of w·logit(two_tower) + (1 − w)·logit(sequence), in [0, 1]."""
        z = self.blend["two_tower"] * _logit(two_tower) + self.blend["sequence"] * _logit(sequence)
        return _sigmoid(z)

    def catalogue_scores(self, users: Sequence[UserContext]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Calibrated two-tower and sequence scores of every catalogue item, (users, items) each."""
        tt = self.two_tower_scores(self.user_vectors(users), self._item_vectors)
        hidden, has = self._hidden(users)
        with torch.inference_mode():
            logits = (hidden @ self._seq_table.T).numpy().astype(np.float64)
        return tt, self._calibrate_sequence(logits, has)
