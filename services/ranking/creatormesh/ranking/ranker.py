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

import numpy as np
from numpy.typing import NDArray

from creatormesh.ranking.abtest import CONTROL
from creatormesh.ranking.catalog import NEUTRAL, Catalog, ItemMeta
from creatormesh.ranking.diversity import coverage, intra_list_diversity, mmr
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


@dataclass(frozen=True)
class RankInput:
    user_id: str
    candidates: tuple[ItemMeta, ...]  # empty = retrieve
    limit: int
    diversity: float
    exclude: frozenset[str]
    arm: str
    now: float  # epoch seconds


@dataclass(frozen=True)
class ScoredItem:
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


class Ranker:
    def __init__(self, recommender: Recommender, index: ItemIndex, catalog: Catalog, settings: RankingSettings) -> None:
        self.recommender = recommender
        self.index = index
        self.catalog = catalog
        self.settings = settings
        self._vectors: OrderedDict[tuple[object, ...], NDArray[np.float32]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- items ------------------------------------------------------------------
    def add_items(self, items: Sequence[ItemMeta], vectors: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Index ``items`` (embedding them unless ``vectors`` are given); returns their vectors."""
        if not items:
            return np.zeros((0, self.recommender.dim), dtype=np.float32)
        if vectors is None:
            vectors = self.recommender.item_vectors([m.content for m in items])
        self.catalog.upsert(items)
        self.index.add([m.item_id for m in items], vectors)
        return vectors

    def _vectors_for(self, items: Sequence[ItemMeta], from_request: bool) -> NDArray[np.float32]:
        """Index vectors where the index holds this content, cached or freshly embedded vectors otherwise."""
        out, found = self.index.vectors([m.item_id for m in items])
        missing: list[int] = []
        for i, meta in enumerate(items):
            if found[i] and (not from_request or self.catalog.get(meta.item_id) == meta):
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

    # --- ranking ----------------------------------------------------------------
    def rank(self, req: RankInput, features: UserFeatures) -> Page:
        s = self.settings
        learned_share = blend_weight(features.total_interactions, s.warm_after_interactions)
        state = WARM if learned_share >= 1.0 else COLD
        w = 0.0 if req.arm == CONTROL else learned_share
        history = features.history
        interests = tuple(features.interests)
        user = UserContext(req.user_id, interests, history)
        user_vec = self.recommender.user_vector(user)
        seen = req.exclude | frozenset(history)

        if req.candidates:
            merged = (
                c.merged_over(self.catalog.get(c.item_id)) for c in req.candidates if c.item_id not in req.exclude
            )
            items = [m for m in merged if not m.blocked]
            source = REQUEST
        else:
            items = self._retrieve(user, user_vec, w, seen)
            source = INDEX
        if not items:
            return Page([], state, w, source, 0.0, 0.0, 0, self.recommender.version)

        vectors = self._vectors_for(items, from_request=source == REQUEST)
        two_tower = self.recommender.two_tower_scores(user_vec, vectors)
        sequence = (
            self.recommender.sequence_scores(user, [m.content for m in items])
            if history
            else np.full(len(items), NEUTRAL)
        )
        learned = self.recommender.learned_scores(two_tower, sequence)
        wanted = frozenset(interests)
        match = np.array([interest_match(m.labels, wanted) for m in items])
        quality = np.array([m.quality for m in items])
        fresh = np.array([freshness(m.published_at, req.now, s.freshness_half_life_hours) for m in items])
        relevance = w * learned + (1.0 - w) * match
        score = (1.0 - s.quality_weight - s.freshness_weight) * relevance + s.quality_weight * quality
        score = score + s.freshness_weight * fresh

        feats = [m.diversity for m in items]
        # MMR looks at the best MMR_POOL_FACTOR x limit items only: deeper ones are (almost) never picked
        pool = np.argsort(-score, kind="stable")[: max(MMR_POOL_FACTOR * req.limit, MMR_POOL_MIN)]
        picked, penalties = mmr(score[pool], [feats[i] for i in pool], min(req.limit, len(pool)), req.diversity)
        order = [int(pool[k]) for k in picked]
        page = [
            ScoredItem(
                items[i],
                float(score[i]) - p,
                float(two_tower[i]),
                float(sequence[i]),
                float(quality[i]),
                float(fresh[i]),
                float(match[i]),
                p,
            )
            for i, p in zip(order, penalties, strict=True)
        ]
        chosen = [feats[i] for i in order]
        return Page(
            page, state, w, source, intra_list_diversity(chosen), coverage(chosen, feats),
            len(items), self.recommender.version,
        )  # fmt: skip

    def _retrieve(
        self, user: UserContext, user_vec: NDArray[np.float32], w: float, seen: frozenset[str]
    ) -> list[ItemMeta]:
        s = self.settings
        ids: dict[str, None] = {}
        if w > 0:
            for item_id, _ in self.index.search(user_vec, s.retrieval_candidates, exclude=seen):
                ids[item_id] = None
            if user.history:
                for item_id in self.recommender.sequence_top(user, SEQUENCE_CANDIDATES, exclude=seen):
                    ids[item_id] = None
        if w < 1:
            cold = self.catalog.best_for(
                user.interests, s.retrieval_candidates, min_quality=s.cold_min_quality, exclude=seen
            )
            ids.update(dict.fromkeys(cold))
        out = []
        for item_id in ids:
            meta = self.catalog.get(item_id)
            if meta is not None and not meta.blocked:
                out.append(meta)
        return out


def _content_key(meta: ItemMeta) -> tuple[object, ...]:
    c = meta.content
    return (c.item_id, c.genres, c.hashtags, c.text, c.engagement_rate, c.quality)
