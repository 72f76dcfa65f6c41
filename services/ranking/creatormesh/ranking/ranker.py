"""The feed ranker: candidates (the caller's, or retrieved), scores blended between cold start and
the learned models, quality and freshness, then the MMR diversity re-rank. Plain Python, no transport.

    relevance = w · learned + (1 − w) · interest_match          w = min(1, interactions / warm_after)
    score     = (1 − q − f) · relevance + q · quality + f · freshness

``learned`` is the validated blend of the two-tower and sequence scores (``Recommender.learned_scores``).
The control arm of the A/B test is the non-ML baseline: w = 0 (interests, quality, freshness).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.abtest import CONTROL
from creatormesh.ranking.catalog import NEUTRAL, Catalog, ItemMeta
from creatormesh.ranking.columns import Codes, ItemRows, rows_of
from creatormesh.ranking.diversity import genre_coverage, list_diversity_codes, mmr_codes
from creatormesh.ranking.features import UserFeatures
from creatormesh.ranking.index import ItemIndex
from creatormesh.ranking.recommender import Recommender, UserContext
from creatormesh.ranking.settings import RankingSettings

COLD, WARM = "cold", "warm"
REQUEST, INDEX = "request", "index"
SEQUENCE_CANDIDATES = 50
VECTOR_CACHE_SIZE = 20_000
MMR_POOL_FACTOR = 4
MMR_POOL_MIN = 100
TOWER, SEQUENCE = "tower", "sequence"  # the model vectors the catalogue keeps per item


@dataclass(frozen=True)
class RankInput:
    user_id: str
    candidates: tuple[ItemMeta, ...]  # empty = retrieve
    limit: int
    diversity: float
    exclude: frozenset[str]
    arm: str
    now: float  # epoch seconds


class ScoredItem(NamedTuple):
    item: ItemMeta
    score: float
    two_tower: float
    sequence: float
    quality: float
    freshness: float
    interest_match: float
    diversity_penalty: float


@dataclass(frozen=True)
class Page:
    items: list[ScoredItem]
    user_state: str
    blend_weight: float
    source: str
    intra_list_diversity: float
    coverage: float
    considered: int
    model_version: str


def blend_weight(interactions: int, warm_after: int) -> float:
    return min(1.0, max(0, interactions) / warm_after)


def freshness(published_at: float | None, now: float, half_life_hours: float) -> float:
    """1 when just published, 0.5 after one half-life; unknown = neutral 0.5."""
    if published_at is None:
        return NEUTRAL
    age_hours = max(0.0, now - published_at) / 3600.0
    return math.pow(0.5, age_hours / half_life_hours)


def interest_match(labels: frozenset[str], interests: frozenset[str]) -> float:
    """Share of the item's labels the user is interested in (at most 2 labels need to match)."""
    if not labels or not interests:
        return 0.0
    return min(1.0, len(labels & interests) / min(len(labels), 2))


@dataclass(frozen=True)
class _Scored:
    """One request's candidates and their score columns."""

    rows: ItemRows
    score: NDArray[np.float64]
    two_tower: NDArray[np.float64]
    sequence: NDArray[np.float64]
    match: NDArray[np.float64]
    fresh: NDArray[np.float64]
    pool: NDArray[np.intp]  # the best MMR_POOL_FACTOR x limit candidates, best first


class Ranker:
    """Ranks pages for one request or for a batch of concurrent requests (``rank_many``: one model pass
    and one index search for the whole batch, the same pages as ranking them one by one)."""

    def __init__(self, recommender: Recommender, index: ItemIndex, settings: RankingSettings) -> None:
        self.recommender = recommender
        self.index = index
        self.catalog = Catalog(vectors={TOWER: recommender.dim, SEQUENCE: recommender.sequence_dim})
        self.settings = settings
        self._vectors: OrderedDict[tuple[object, ...], NDArray[np.float32]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._trained: tuple[NDArray[np.intp] | None, bool] = (None, True)  # slots, some missing
        self._trained_at = 0  # catalogue size when _trained was made

    # --- items ------------------------------------------------------------------
    def add_items(self, items: Sequence[ItemMeta], vectors: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Index ``items`` (embedding them unless ``vectors`` are given); returns their vectors."""
        if not items:
            return np.zeros((0, self.recommender.dim), dtype=np.float32)
        contents = [m.content for m in items]
        if vectors is None:
            vectors = self.recommender.item_vectors(contents)
        sequence = self.recommender.sequence_item_vectors(contents)
        ids = [m.item_id for m in items]
        self.catalog.upsert(items, {TOWER: vectors, SEQUENCE: sequence})
        self.index.add(ids, vectors, self.catalog.slots(ids))
        return vectors

    def _vectors_for(self, items: Sequence[ItemMeta]) -> NDArray[np.float32]:
        """Item-tower vectors of a request's own items: the index's where it holds this content, else cached or
        freshly embedded."""
        out, found = self.index.vectors([m.item_id for m in items])
        missing: list[int] = []
        for i, meta in enumerate(items):
            if found[i] and self.catalog.get(meta.item_id) == meta:
                continue
            with self._cache_lock:
                vector = self._vectors.get(_content_key(meta))
            if vector is None:
                missing.append(i)
            else:
                out[i] = vector
        if missing:
            fresh = self.recommender.item_vectors([items[i].content for i in missing])
            with self._cache_lock:
                for row, i in enumerate(missing):
                    out[i] = fresh[row]
                    self._vectors[_content_key(items[i])] = fresh[row]
                while len(self._vectors) > VECTOR_CACHE_SIZE:
                    self._vectors.popitem(last=False)
        return out

    def _trained_slots(self) -> NDArray[np.intp]:
        """The catalogue slot of every trained item (by position in ``recommender.item_ids``), -1 where the
        catalogue does not hold it. Slots never move, so the map is only redone while some are missing."""
        slots, missing = self._trained
        if slots is None or (missing and len(self.catalog) != self._trained_at):
            slot_of = self.catalog.slot_map()
            slots = np.array([slot_of.get(i, -1) for i in self.recommender.item_ids], dtype=np.intp)
            self._trained, self._trained_at = (slots, bool((slots < 0).any())), len(self.catalog)
        return slots

    # --- ranking ----------------------------------------------------------------
    def rank(self, req: RankInput, features: UserFeatures) -> Page:
        return self.rank_many([req], [features])[0]

    def rank_many(self, reqs: Sequence[RankInput], features: Sequence[UserFeatures]) -> list[Page]:
        """One page per request, in order."""
        if len(reqs) != len(features):
            raise ValueError(f"{len(reqs)} requests but {len(features)} feature sets")
        if not reqs:
            return []
        s, rec = self.settings, self.recommender
        users = [UserContext(r.user_id, tuple(f.interests), f.history) for r, f in zip(reqs, features, strict=True)]
        shares = [blend_weight(f.total_interactions, s.warm_after_interactions) for f in features]
        weights = [0.0 if r.arm == CONTROL else x for r, x in zip(reqs, shares, strict=True)]
        user_vecs = rec.user_vectors(users)
        states, known = rec.sequence_states(users)
        seen = [r.exclude | frozenset(u.history) for r, u in zip(reqs, users, strict=True)]
        retrieved = self._retrieve_many(
            [i for i, r in enumerate(reqs) if not r.candidates], users, user_vecs, states, known, weights, seen
        )
        scored: list[_Scored | None] = []
        for i, req in enumerate(reqs):
            codes = self.catalog.codes()
            rows = retrieved[i] if i in retrieved else self._request_rows(req, codes)
            has_history = bool(users[i].history) and bool(known[i])
            interests = np.array(codes.labels(users[i].interests), dtype=np.int64)
            scored.append(self._score(req, rows, interests, user_vecs[i], states[i], has_history, weights[i]))
        return [
            self._page(req, x, shares[i], weights[i])
            if x is not None
            else Page([], WARM if shares[i] >= 1.0 else COLD, weights[i], _source(req), 0.0, 0.0, 0, rec.version)
            for i, (req, x) in enumerate(zip(reqs, scored, strict=True))
        ]

    def _request_rows(self, req: RankInput, codes: Codes) -> ItemRows:
        merged = (c.merged_over(self.catalog.get(c.item_id)) for c in req.candidates if c.item_id not in req.exclude)
        items = [m for m in merged if not m.blocked]
        vectors = {
            TOWER: self._vectors_for(items),
            SEQUENCE: self.recommender.sequence_item_vectors([m.content for m in items]),
        }
        return rows_of(items, codes, vectors)

    def _score(
        self, req: RankInput, rows: ItemRows, interests: NDArray[np.int64], user_vec: NDArray[np.float32],
        state: NDArray[np.float32], has_history: bool, w: float,
    ) -> _Scored | None:  # fmt: skip
        if not len(rows):
            return None
        s, rec = self.settings, self.recommender
        two_tower = rec.two_tower_scores(user_vec, rows.vectors[TOWER])
        sequence = rec.sequence_scores_from(state, has_history, rows.vectors[SEQUENCE])
        learned = rec.learned_scores(two_tower, sequence)
        match = interest_matches(rows.labels, interests)
        fresh = freshness_of(rows.published, req.now, s.freshness_half_life_hours)
        relevance = w * learned + (1.0 - w) * match
        score = (1.0 - s.quality_weight - s.freshness_weight) * relevance + s.quality_weight * rows.quality
        score = score + s.freshness_weight * fresh
        # MMR looks at the best MMR_POOL_FACTOR x limit items only: deeper ones are (almost) never picked
        pool = np.argsort(-score, kind="stable")[: max(MMR_POOL_FACTOR * req.limit, MMR_POOL_MIN)]
        return _Scored(rows, score, two_tower, sequence, match, fresh, pool)

    def _page(self, req: RankInput, x: _Scored, share: float, w: float) -> Page:
        """The MMR re-rank of the best ``MMR_POOL_FACTOR x limit`` candidates into the page."""
        pool = x.pool
        genres, creator = x.rows.genres[pool], x.rows.creator[pool]
        picks, penalty = mmr_codes(x.score[pool], genres, creator, req.limit, req.diversity)
        order = pool[picks]
        columns = zip(
            x.rows.metas(order), (x.score[order] - penalty).tolist(), x.two_tower[order].tolist(),
            x.sequence[order].tolist(), x.rows.quality[order].tolist(), x.fresh[order].tolist(),
            x.match[order].tolist(), penalty.tolist(), strict=True,
        )  # fmt: skip
        items = [ScoredItem(*values) for values in columns]
        return Page(
            items, WARM if share >= 1.0 else COLD, w, _source(req), list_diversity_codes(genres[picks], creator[picks]),
            genre_coverage(x.rows.genres[order], x.rows.genres), len(x.rows), self.recommender.version,
        )  # fmt: skip

    def _retrieve_many(
        self, which: list[int], users: Sequence[UserContext], user_vecs: NDArray[np.float32],
        states: NDArray[np.float32], known: NDArray[np.bool_], weights: Sequence[float],
        seen: Sequence[frozenset[str]],
    ) -> dict[int, ItemRows]:  # fmt: skip
        """Candidates of the requests in ``which`` from the index, the sequence model and cold start."""
        s = self.settings
        parts: dict[int, list[NDArray[np.intp]]] = {i: [] for i in which}
        learned = [i for i in which if weights[i] > 0]
        if learned:
            found = self.index.search_keys(user_vecs[learned], s.retrieval_candidates, [seen[i] for i in learned])
            for i, slots in zip(learned, found, strict=True):
                parts[i].append(slots)
            with_history = [i for i in learned if users[i].history and known[i]]
            if with_history:
                tops = self.recommender.sequence_top_rows(
                    states[with_history], known[with_history], SEQUENCE_CANDIDATES, [seen[i] for i in with_history]
                )
                trained = self._trained_slots()
                for i, top in zip(with_history, tops, strict=True):
                    slots = trained[top]
                    parts[i].append(slots[slots >= 0])
        for i in which:
            if weights[i] < 1:
                cold = self.catalog.best_for(
                    users[i].interests, s.retrieval_candidates, min_quality=s.cold_min_quality, exclude=seen[i]
                )
                parts[i].append(self.catalog.slots(cold))
        out = {}
        for i, slot_lists in parts.items():
            slots = np.concatenate(slot_lists) if slot_lists else np.zeros(0, dtype=np.intp)
            _, first = np.unique(slots, return_index=True)  # each item once, where it first came
            rows = self.catalog.rows_at(slots[np.sort(first)])
            out[i] = rows.take(np.flatnonzero(~rows.blocked)) if rows.blocked.any() else rows
        return out


def _source(req: RankInput) -> str:
    return REQUEST if req.candidates else INDEX


def interest_matches(labels: NDArray[np.int64], interests: NDArray[np.int64]) -> NDArray[np.float64]:
    """``interest_match`` for every row of label codes ((n, width), -1 padded) against interest codes."""
    if not interests.size:
        return np.zeros(labels.shape[0])
    sizes = (labels >= 0).sum(axis=1)
    hits = np.isin(labels, interests).sum(axis=1)
    return np.where(sizes > 0, np.minimum(1.0, hits / np.maximum(np.minimum(sizes, 2), 1)), 0.0)


def freshness_of(published: NDArray[np.float64], now: float, half_life_hours: float) -> NDArray[np.float64]:
    """``freshness`` for an array of publication times (NaN = unknown = neutral)."""
    age_hours = np.maximum(0.0, now - published) / 3600.0
    return np.where(np.isnan(published), NEUTRAL, np.power(0.5, age_hours / half_life_hours))


def _content_key(meta: ItemMeta) -> tuple[object, ...]:
    c = meta.content
    return (c.item_id, c.genres, c.hashtags, c.text, c.engagement_rate, c.quality)
