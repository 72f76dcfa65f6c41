"""The ranking service on the kit: loads the models, builds the item index, serves RankingService,
consumes `interactions` (the feature store) and `content.scored` (new items, live)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from creatormesh.common import topics
from creatormesh.common.batching import Batcher
from creatormesh.common.bus import Event, Handler
from creatormesh.common.embeddings import TextEmbedder
from creatormesh.common.errors import FailedPrecondition, InvalidArgument, require
from creatormesh.common.redis_pool import redis_client
from creatormesh.common.server import Runtime, Service, Servicer
from creatormesh.common.settings import load
from creatormesh.events.v1 import interactions_pb2
from creatormesh.ranking import abtest
from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.experiments import ArmLog
from creatormesh.ranking.features import FeatureStore, InteractionRecord
from creatormesh.ranking.index import ItemIndex
from creatormesh.ranking.live_items import LiveItems, Stored
from creatormesh.ranking.ranker import COLD, WARM, Page, Ranker, RankInput, blend_weight
from creatormesh.ranking.recommender import ItemContent, Recommender
from creatormesh.ranking.servicer import RankingServicer
from creatormesh.ranking.settings import RankingSettings
from creatormesh.ranking.v1 import ranking_pb2, ranking_pb2_grpc

log = logging.getLogger("creatormesh.ranking")
FULL_NAME = ranking_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name
_TYPE_NAMES = {v: k.removeprefix("INTERACTION_TYPE_").lower() for k, v in interactions_pb2.InteractionType.items()}


class RankingService(Service):
    name = "ranking"

    def __init__(self, runtime: Runtime, settings: RankingSettings | None = None) -> None:
        super().__init__(runtime)
        self.settings = settings or load(RankingSettings)
        self.ranker: Ranker
        self.features: FeatureStore
        self.live: LiveItems
        self.arms: ArmLog
        self._follow: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._batcher: Batcher[RankInput, Page] = Batcher(self._rank_batch, self.settings.max_batch, "rank_for_you")
        # one thread ranks every batch: its thread-local state (torch, OpenMP, FAISS) is set up once, at warm-up
        self._ranking_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranking")

    def servicers(self) -> Sequence[Servicer]:
        return [Servicer(ranking_pb2_grpc.add_RankingServiceServicer_to_server, RankingServicer(self), FULL_NAME)]

    async def load(self) -> None:
        s = self.settings
        model_path = Path(s.model_path)
        if not (model_path / "metadata.json").is_file():
            raise FileNotFoundError(
                f"no ranking checkpoint at {model_path} (CREATORMESH_RANKING_MODEL_PATH): "
                "train one with `creatormesh ranking train`"
            )
        # a batch's matrix products are small: more BLAS threads than that only spin against the other threads
        threadpool_limits(s.blas_threads, user_api="blas")
        embedder = await asyncio.to_thread(TextEmbedder, s.embedder_path or None, threads=s.torch_threads)
        recommender = await asyncio.to_thread(Recommender.load, model_path, embedder)
        index = ItemIndex(recommender.dim, exact_max_items=s.exact_index_max_items, ef_search=s.hnsw_ef_search)
        self.ranker = Ranker(recommender, index, s)
        trained = [ItemMeta(c) for c in recommender.catalog()]
        await asyncio.to_thread(self.ranker.add_items, trained)
        redis = redis_client(self.runtime.settings.redis_url)
        self.features = FeatureStore(
            redis, ttl_seconds=s.feature_ttl_seconds, history_length=s.history_length, prefix=s.redis_prefix
        )
        self.live = LiveItems(redis, prefix=s.redis_prefix)
        self.arms = ArmLog(redis, prefix=s.redis_prefix)
        stored, position = await self.live.load_all()
        self._apply(stored)
        self._follow = asyncio.create_task(self.live.follow(position, self._apply, self._stop), name="ranking-items")
        warm_up = RankInput(
            "warm-up", (), s.default_limit, s.default_diversity, frozenset(), abtest.OVERDRIVE, time.time()
        )
        await self.rank(warm_up)  # SERVING means a ranking has run: no request pays for lazy setup
        log.info(
            "ranking loaded: model %s, %d trained + %d live items, index %s",
            recommender.version, len(trained), len(stored), index.kind,
        )  # fmt: skip

    async def close(self) -> None:
        self._stop.set()
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        self._ranking_thread.shutdown(wait=False, cancel_futures=True)

    def _apply(self, stored: list[Stored]) -> None:
        """Index live items; those embedded by another model version are embedded again. Items this
        replica already indexed as they are (it stored them itself) are skipped."""
        rec = self.ranker.recommender
        same: list[Stored] = []
        other: list[Stored] = []
        for x in stored:
            if self.ranker.catalog.get(x.meta.item_id) == x.meta:
                continue
            (same if x.model_version == rec.version and x.vector.shape == (rec.dim,) else other).append(x)
        if same:
            self.ranker.add_items([x.meta for x in same], np.stack([x.vector for x in same]))
        if other:
            self.ranker.add_items([x.meta for x in other])

    # --- use cases called by the servicer ------------------------------------
    async def rank(self, req: RankInput) -> Page:
        """One page; concurrent calls are ranked together (one feature read, model pass and index search)."""
        if not hasattr(self, "ranker"):
            raise FailedPrecondition("the ranking models are not loaded yet")
        return await self._batcher.submit(req)

    async def _rank_batch(self, reqs: list[RankInput]) -> list[Page]:
        features = await self.features.features_many([r.user_id for r in reqs])
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ranking_thread, self.ranker.rank_many, reqs, features)

    def state_of(self, interactions: int) -> tuple[str, float]:
        w = blend_weight(interactions, self.settings.warm_after_interactions)
        return (WARM if w >= 1.0 else COLD), w

    # --- events ----------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {topics.INTERACTIONS: self.on_interaction, topics.CONTENT_SCORED: self.on_content_scored}

    async def on_interaction(self, event: Event) -> None:
        p: interactions_pb2.Interaction = event.payload
        require(p.user_id.strip() != "", "user_id", "is required")
        require(p.item_id.strip() != "", "item_id", "is required")
        require(p.type != interactions_pb2.INTERACTION_TYPE_UNSPECIFIED, "type", "is required")
        require(p.type in _TYPE_NAMES, "type", f"unknown interaction type {p.type}")
        require(p.watch_seconds >= 0, "watch_seconds", "must be >= 0")
        require(0 <= p.watch_fraction <= 1, "watch_fraction", "must be in [0, 1]")
        meta = self.ranker.catalog.get(p.item_id)
        occurred = p.occurred_at.ToNanoseconds() / 1e9 if p.HasField("occurred_at") else time.time()
        record = InteractionRecord(
            user_id=p.user_id, item_id=p.item_id, type=_TYPE_NAMES[p.type], occurred_at=occurred,
            creator_id=p.creator_id or (meta.creator_id if meta else ""), watch_seconds=p.watch_seconds,
            watch_fraction=p.watch_fraction, session_id=p.session_id,
            genres=tuple(sorted(meta.labels)) if meta else (), experiment=p.experiment, arm=p.arm,
        )  # fmt: skip
        if await self.features.record(event.event_id, record):
            await self.arms.record(p.experiment, p.arm, p.user_id, record.type, p.watch_seconds)

    async def on_content_scored(self, event: Event) -> None:
        p = event.payload
        require(p.content_id.strip() != "", "content_id", "is required")
        require(0 <= p.v <= 1, "v", "must be in [0, 1]")
        text = ". ".join(t for t in (p.title, p.description) if t)
        content = ItemContent(
            item_id=p.content_id, genres=tuple(g.lower() for g in p.genres),
            hashtags=tuple(h.lower().lstrip("#") for h in p.hashtags), text=text, quality=p.v, title=p.title,
        )  # fmt: skip
        published = p.published_at.ToNanoseconds() / 1e9 if p.HasField("published_at") else None
        meta = ItemMeta(content, p.creator_id, published, blocked=p.safety.blocked)
        try:
            vectors = await asyncio.to_thread(self.ranker.add_items, [meta])
        except ValueError as exc:
            raise InvalidArgument("content_id", f"cannot index the item: {exc}") from exc
        await self.live.put(meta, vectors[0], self.ranker.recommender.version)
