"""gRPC adapter: RankingService proto <-> the ranking domain, nothing else."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common.errors import InvalidArgument, require
from creatormesh.events.v1 import interactions_pb2
from creatormesh.ranking import abtest
from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.features import Insights, Interests, UserFeatures
from creatormesh.ranking.page_wire import PageEncoder
from creatormesh.ranking.ranker import COLD, REQUEST, Page, RankInput
from creatormesh.ranking.recommender import ItemContent
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc

if TYPE_CHECKING:
    from creatormesh.ranking.app import RankingService

MAX_CANDIDATES = 1000
MAX_EXCLUDE = 5000
MAX_INTERESTS = 50
TOGGLE_HEADER = "x-use-overdrive"


def user_id_of(value: str, field: str = "user_id") -> str:
    require(value.strip() != "", field, "is required")
    require(len(value) <= 256, field, "must be at most 256 characters")
    return value


def _unit(value: float, field: str) -> float:
    require(math.isfinite(value) and 0.0 <= value <= 1.0, field, f"must be in [0, 1], got {value}")
    return value


def _labels(values: Any, field: str, limit: int) -> tuple[str, ...]:
    require(len(values) <= limit, field, f"at most {limit} allowed, got {len(values)}")
    out = []
    for i, v in enumerate(values):
        label = v.strip().lower().lstrip("#")
        require(0 < len(label) <= 64, f"{field}[{i}]", "must be 1..64 characters")
        out.append(label)
    return tuple(dict.fromkeys(out))


def candidate_of(c: pb.CandidateItem, field: str) -> ItemMeta:
    require(c.id.strip() != "", f"{field}.id", "is required")
    require(len(c.id) <= 256, f"{field}.id", "must be at most 256 characters")
    require(len(c.content) <= 10_000, f"{field}.content", "must be at most 10000 characters")
    require(len(c.media_types) <= 10, f"{field}.media_types", "at most 10 allowed")
    require(len(c.creator_id) <= 256, f"{field}.creator_id", "must be at most 256 characters")
    engagement = _unit(c.engagement_rate, f"{field}.engagement_rate") if c.HasField("engagement_rate") else None
    quality = _unit(c.quality_score, f"{field}.quality_score") if c.HasField("quality_score") else None
    content = ItemContent(
        item_id=c.id, genres=_labels(c.genres, f"{field}.genres", 20),
        hashtags=_labels(c.hashtags, f"{field}.hashtags", 50), text=c.content,
        engagement_rate=engagement, quality=quality,
    )  # fmt: skip
    published = c.published_at.ToNanoseconds() / 1e9 if c.HasField("published_at") else None
    return ItemMeta(content, c.creator_id, published)


def rank_input_of(request: pb.RankForYouRequest, arm: str, default_diversity: float, default_limit: int) -> RankInput:
    user_id_of(request.user_id)
    require(len(request.candidate_items) <= MAX_CANDIDATES, "candidate_items", f"at most {MAX_CANDIDATES} allowed")
    candidates = tuple(candidate_of(c, f"candidate_items[{i}]") for i, c in enumerate(request.candidate_items))
    seen: set[str] = set()
    for i, c in enumerate(candidates):
        require(c.item_id not in seen, f"candidate_items[{i}].id", f"duplicate id {c.item_id!r}")
        seen.add(c.item_id)
    require(0 <= request.limit <= 500, "limit", f"must be 1..500 (0 = {default_limit}), got {request.limit}")
    diversity = _unit(request.diversity, "diversity") if request.HasField("diversity") else default_diversity
    require(len(request.exclude_item_ids) <= MAX_EXCLUDE, "exclude_item_ids", f"at most {MAX_EXCLUDE} allowed")
    return RankInput(
        user_id=request.user_id, candidates=candidates, limit=request.limit or default_limit, diversity=diversity,
        exclude=frozenset(request.exclude_item_ids), arm=arm, now=time.time(),
    )  # fmt: skip


def toggle_of(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == TOGGLE_HEADER:
            return value if isinstance(value, str) else value.decode()
    return None


def _ts(epoch: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(epoch * 1e9))
    return ts


def _state_pb(state: str) -> pb.UserState.ValueType:
    return pb.USER_STATE_COLD if state == COLD else pb.USER_STATE_WARM


_ENCODER = PageEncoder()


def page_pb(page: Page, experiment: str, arm: abtest.Arm) -> pb.RankForYouResponse:
    out = pb.RankForYouResponse(
        user_state=_state_pb(page.user_state), blend_weight=page.blend_weight, experiment=experiment,
        arm=arm.name, arm_source=pb.ARM_SOURCE_HEADER if arm.source == abtest.HEADER else pb.ARM_SOURCE_BUCKET,
        model_version=page.model_version, intra_list_diversity=page.intra_list_diversity, coverage=page.coverage,
        candidates_considered=page.considered,
        candidate_source=pb.CANDIDATE_SOURCE_REQUEST if page.source == REQUEST else pb.CANDIDATE_SOURCE_INDEX,
    )  # fmt: skip
    out.MergeFromString(_ENCODER.items(page.items, page.blend_weight, catalogue=page.source != REQUEST))
    return out


_TYPES: dict[str, Any] = {
    name.removeprefix("INTERACTION_TYPE_").lower(): value for name, value in interactions_pb2.InteractionType.items()
}


def features_pb(f: UserFeatures) -> pb.UserFeatures:
    out = pb.UserFeatures(
        user_id=f.user_id, total_interactions=f.total_interactions, avg_session_duration=f.avg_session_duration,
        interests=f.interests, ttl_seconds=f.ttl_seconds, found=f.found,
        recent_items=[
            pb.RecentItem(item_id=r.item_id, type=_TYPES.get(r.type, 0), occurred_at=_ts(r.occurred_at),
                          watch_seconds=r.watch_seconds)
            for r in f.recent
        ],
    )  # fmt: skip
    if f.updated_at is not None:
        out.updated_at.CopyFrom(_ts(f.updated_at))
    return out


def interest_weights_pb(items: Any) -> list[pb.InterestWeight]:
    return [pb.InterestWeight(interest=w.interest, weight=w.weight, interactions=w.interactions) for w in items]


def insights_pb(i: Insights, state: str, blend: float) -> pb.GetInsightsResponse:
    return pb.GetInsightsResponse(
        user_id=i.user_id, user_state=_state_pb(state), blend_weight=blend, total_interactions=i.total_interactions,
        top_interests=interest_weights_pb(i.top_interests), top_creators=i.top_creators[:10],
        drift=pb.InterestDrift(score=i.drift_score, rising=i.rising, fading=i.fading,
                               recent_interactions=i.recent_interactions),
        avg_watch_fraction=i.avg_watch_fraction,
        interaction_counts={"INTERACTION_TYPE_" + k.upper(): v for k, v in i.counts.items()},
    )  # fmt: skip


def interests_pb(i: Interests) -> pb.GetInterestsResponse:
    out = pb.GetInterestsResponse(
        user_id=i.user_id, interests=i.declared, learned_interests=interest_weights_pb(i.learned)
    )
    if i.updated_at is not None:
        out.updated_at.CopyFrom(_ts(i.updated_at))
    return out


class RankingServicer(ranking_pb2_grpc.RankingServiceServicer):
    def __init__(self, service: RankingService) -> None:
        self.service = service

    async def RankForYou(self, request: pb.RankForYouRequest, context: Any) -> pb.RankForYouResponse:
        s = self.service.settings
        require(len(request.experiment) <= 128, "experiment", "must be at most 128 characters")
        experiment = request.experiment or s.default_experiment
        try:
            arm = abtest.choose_arm(request.user_id, experiment, s.overdrive_share, toggle_of(context))
        except ValueError as exc:
            raise InvalidArgument(TOGGLE_HEADER, str(exc)) from exc
        req = rank_input_of(request, arm.name, s.default_diversity, s.default_limit)
        page = await self.service.rank(req)
        return page_pb(page, experiment, arm)

    async def GetFeatures(self, request: pb.GetFeaturesRequest, context: Any) -> pb.GetFeaturesResponse:
        features = await self.service.features.features(user_id_of(request.user_id))
        return pb.GetFeaturesResponse(features=features_pb(features))

    async def GetInsights(self, request: pb.GetInsightsRequest, context: Any) -> pb.GetInsightsResponse:
        insights = await self.service.features.insights(user_id_of(request.user_id))
        state, blend = self.service.state_of(insights.total_interactions)
        return insights_pb(insights, state, blend)

    async def GetInterests(self, request: pb.GetInterestsRequest, context: Any) -> pb.GetInterestsResponse:
        return interests_pb(await self.service.features.interests(user_id_of(request.user_id)))

    async def SetInterests(self, request: pb.SetInterestsRequest, context: Any) -> pb.SetInterestsResponse:
        user_id = user_id_of(request.user_id)
        labels = _labels(request.interests, "interests", MAX_INTERESTS)
        stored = await self.service.features.set_interests(user_id, labels)
        out = pb.SetInterestsResponse(user_id=user_id, interests=stored.declared)
        if stored.updated_at is not None:
            out.updated_at.CopyFrom(_ts(stored.updated_at))
        return out
