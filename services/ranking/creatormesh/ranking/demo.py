"""The ranking part of `creatormesh demo`: a new viewer is cold-started from signup interests,
watches another genre (interactions through Kafka), and the feed follows; a new item arrives on
`content.scored` and is ranked without a restart; the A/B toggle switches to the control arm."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common import client, topics
from creatormesh.common.demo import DemoContext
from creatormesh.common.runtime.mesh import say
from creatormesh.events.v1 import content_pb2, interactions_pb2
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as vpb

SERVICE = pb.DESCRIPTOR.services_by_name["RankingService"]
SIGNUP = ["comedy", "romance"]
WATCHED = "sci-fi"
INTERACTIONS = 25


def genre_share(items: Sequence[pb.RankedItem], genre: str) -> float:
    return sum(genre in item.genres for item in items) / max(1, len(items))


def top_genres(items: Sequence[pb.RankedItem], n: int = 4) -> str:
    counts = Counter(g for item in items for g in item.genres)
    return ", ".join(f"{g} {c}" for g, c in counts.most_common(n))


def page_rows(page: pb.RankForYouResponse, n: int = 8) -> list[Sequence[Any]]:
    return [
        [i.rank, i.item_id, " ".join(sorted(i.genres)[:3]), f"{i.score:.3f}", f"{i.breakdown.interest_match:.2f}",
         f"{i.breakdown.two_tower:.2f}", f"{i.breakdown.sequence:.2f}", f"{i.breakdown.quality:.2f}"]
        for i in page.items[:n]
    ]  # fmt: skip


HEADERS = ["rank", "item", "genres", "score", "interest", "two-tower", "sequence", "quality"]


async def run(ctx: DemoContext) -> None:
    section = ctx.report.section("Ranking: cold start → learned feed, live items, A/B")
    stub = ranking_pb2_grpc.RankingServiceStub(client.channel(ctx.target("ranking"), SERVICE, deadline=30))
    user = f"demo-viewer-{uuid.uuid4().hex[:8]}"
    force = (("x-use-overdrive", "1"),)

    await stub.SetInterests(pb.SetInterestsRequest(user_id=user, interests=SIGNUP))
    cold = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=20), metadata=force)
    say(f"demo      ranking: {user} signs up with {SIGNUP}: cold page ({top_genres(cold.items)})")
    section.summary.append(
        f"{user} signed up with interests {SIGNUP}: state {pb.UserState.Name(cold.user_state)}, "
        f"blend weight {cold.blend_weight:.2f}; top genres: {top_genres(cold.items)}"
    )
    section.tables.append((HEADERS, page_rows(cold)))

    # the viewer watches sci-fi: items of that genre from a feed asked with that interest
    probe = f"demo-probe-{uuid.uuid4().hex[:8]}"
    await stub.SetInterests(pb.SetInterestsRequest(user_id=probe, interests=[WATCHED]))
    pool = await stub.RankForYou(pb.RankForYouRequest(user_id=probe, limit=100, diversity=0.0), metadata=force)
    watched = [i for i in pool.items if WATCHED in i.genres][:INTERACTIONS]
    say(f"demo      ranking: {len(watched)} '{WATCHED}' interactions through Kafka ({topics.INTERACTIONS})")
    started = time.monotonic()
    for n, item in enumerate(watched):
        kind = interactions_pb2.INTERACTION_TYPE_COMPLETE if n % 3 else interactions_pb2.INTERACTION_TYPE_LIKE
        event = interactions_pb2.Interaction(
            user_id=user, item_id=item.item_id, type=kind, watch_seconds=30.0, watch_fraction=1.0,
            occurred_at=Timestamp(seconds=int(time.time())), experiment=cold.experiment, arm=cold.arm,
            session_id=f"{user}-s1", position=n + 1, surface="for_you",
        )  # fmt: skip
        await ctx.bus.publish(topics.INTERACTIONS, event, subject=user)
    features = await wait_for_interactions(stub, user, len(watched))
    applied = time.monotonic() - started
    warm = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=20), metadata=force)
    insights = await stub.GetInsights(pb.GetInsightsRequest(user_id=user))
    say(f"demo      ranking: after {features.total_interactions} interactions: {top_genres(warm.items)}")
    section.summary.append(
        f"after {features.total_interactions} interactions (applied in {applied:.1f} s, feature TTL "
        f"{features.ttl_seconds} s): state {pb.UserState.Name(warm.user_state)}, "
        f"blend weight {warm.blend_weight:.2f}; '{WATCHED}' share of the page "
        f"{genre_share(cold.items, WATCHED):.0%} → {genre_share(warm.items, WATCHED):.0%};"
        f" top genres: {top_genres(warm.items)}; learned interests: "
        f"{', '.join(f'{w.interest} {w.weight:.2f}' for w in insights.top_interests[:4])}"
    )
    section.tables.append((HEADERS, page_rows(warm)))

    new_id = await publish_new_item(ctx)
    found = await wait_for_item(stub, new_id)
    section.summary.append(
        f"new item {new_id} arrived on {topics.CONTENT_SCORED} (V 0.93, genre '{WATCHED}'): "
        + (f"ranked at #{found} in a '{WATCHED}' feed without a restart" if found else "NOT found in the feed")
    )
    control = await stub.RankForYou(pb.RankForYouRequest(user_id=user, limit=20), metadata=(("x-use-overdrive", "0"),))
    section.summary.append(
        f"A/B: x-use-overdrive=0 → arm '{control.arm}' (non-ML baseline, blend weight {control.blend_weight:.2f}); "
        f"diversity {warm.intra_list_diversity:.2f} (ML) vs {control.intra_list_diversity:.2f} (control), "
        f"coverage {warm.coverage:.2f} vs {control.coverage:.2f}"
    )
    section.ok = (
        cold.user_state == pb.USER_STATE_COLD
        and warm.user_state == pb.USER_STATE_WARM
        and genre_share(warm.items, WATCHED) > genre_share(cold.items, WATCHED)
        and bool(found)
        and control.arm == "control"
    )


async def wait_for_interactions(stub: Any, user: str, n: int, timeout: float = 60) -> pb.UserFeatures:
    deadline = time.monotonic() + timeout
    while True:
        features: pb.UserFeatures = (await stub.GetFeatures(pb.GetFeaturesRequest(user_id=user))).features
        if features.total_interactions >= n or time.monotonic() > deadline:
            return features
        await asyncio.sleep(0.2)


async def publish_new_item(ctx: DemoContext) -> str:
    item_id = f"clip-demo-{uuid.uuid4().hex[:8]}"
    event = content_pb2.ContentScored(
        content_id=item_id, kind=vpb.CONTENT_KIND_CLIP, creator_id="streamer-demo", v=0.93, v_unpenalized=0.93,
        title="Alien ship lands in the city: first contact, live", description="sci-fi short, space and aliens",
        hashtags=["scifi", "space"], genres=[WATCHED], published_at=Timestamp(seconds=int(time.time())),
        model_version="demo",
    )  # fmt: skip
    say(f"demo      ranking: new item {item_id} on {topics.CONTENT_SCORED}")
    await ctx.bus.publish(topics.CONTENT_SCORED, event, subject=item_id)
    return item_id


async def wait_for_item(stub: Any, item_id: str, timeout: float = 60) -> int:
    """The item's rank in a fresh sci-fi viewer's cold feed (0 = not found in time)."""
    viewer = f"demo-scifi-{uuid.uuid4().hex[:8]}"
    await stub.SetInterests(pb.SetInterestsRequest(user_id=viewer, interests=[WATCHED]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await stub.RankForYou(
            pb.RankForYouRequest(user_id=viewer, limit=50), metadata=(("x-use-overdrive", "1"),)
        )
        for item in page.items:
            if item.item_id == item_id:
                return int(item.rank)
        await asyncio.sleep(0.5)
    return 0
