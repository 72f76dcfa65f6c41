"""Pages written as wire bytes parse into exactly the response built field by field."""

from __future__ import annotations

import pytest

from creatormesh.ranking import abtest
from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.page_wire import PageEncoder, varint
from creatormesh.ranking.ranker import COLD, INDEX, REQUEST, WARM, Page, ScoredItem
from creatormesh.ranking.recommender import ItemContent
from creatormesh.ranking.servicer import page_pb
from creatormesh.ranking.v1 import ranking_pb2 as pb


def field_by_field(page: Page, experiment: str, arm: abtest.Arm) -> pb.RankForYouResponse:
    """The response built from Python objects, the plain way (the reference)."""
    return pb.RankForYouResponse(
        items=[
            pb.RankedItem(
                item_id=s.item.item_id, rank=rank, score=s.score, creator_id=s.item.creator_id,
                genres=sorted(s.item.labels),
                breakdown=pb.ScoreBreakdown(
                    two_tower=s.two_tower, sequence=s.sequence, quality=s.quality, freshness=s.freshness,
                    interest_match=s.interest_match, blend_weight=page.blend_weight,
                    diversity_penalty=s.diversity_penalty,
                ),
            )
            for rank, s in enumerate(page.items, 1)
        ],
        user_state=pb.USER_STATE_COLD if page.user_state == COLD else pb.USER_STATE_WARM,
        blend_weight=page.blend_weight, experiment=experiment, arm=arm.name,
        arm_source=pb.ARM_SOURCE_HEADER if arm.source == abtest.HEADER else pb.ARM_SOURCE_BUCKET,
        model_version=page.model_version, intra_list_diversity=page.intra_list_diversity, coverage=page.coverage,
        candidates_considered=page.considered,
        candidate_source=pb.CANDIDATE_SOURCE_REQUEST if page.source == REQUEST else pb.CANDIDATE_SOURCE_INDEX,
    )  # fmt: skip


def items(n: int) -> list[ScoredItem]:
    out = []
    for i in range(n):
        content = ItemContent(
            f"item-{i}-é" * (1 + i % 3),  # non-ASCII, and ids long enough for two-byte lengths
            genres=("comedy", "drama")[: i % 3], hashtags=("funny",) * (i % 2),
        )  # fmt: skip
        meta = ItemMeta(content, f"creator-{i}" if i % 4 else "")
        values = [0.0 if (i + k) % 5 == 0 else (i + 1) * 0.01 * (k + 1) for k in range(7)]
        values[6] = -values[6] if i % 7 == 0 else values[6]
        out.append(ScoredItem(meta, *values))
    return out


@pytest.mark.parametrize(
    ("n", "state", "source", "arm"),
    [
        (50, WARM, INDEX, abtest.Arm(abtest.OVERDRIVE, abtest.HEADER)),
        (300, COLD, REQUEST, abtest.Arm(abtest.CONTROL, abtest.BUCKET)),  # ranks past 127: two-byte varints
        (0, COLD, INDEX, abtest.Arm(abtest.OVERDRIVE, abtest.BUCKET)),
    ],
)
def test_the_page_parses_into_the_field_by_field_response(n: int, state: str, source: str, arm: abtest.Arm) -> None:
    page = Page(items(n), state, 0.4, source, 0.7, 0.5, n * 3, "rk-test")
    built = page_pb(page, "exp", arm)
    assert built == field_by_field(page, "exp", arm)
    assert built.SerializeToString(deterministic=True) == field_by_field(page, "exp", arm).SerializeToString(
        deterministic=True
    )
    assert page_pb(page, "exp", arm) == built  # a second time: catalogue items come from the cache


def test_the_cache_keys_item_objects_by_identity_and_stays_bounded() -> None:
    encoder = PageEncoder(max_items=3)
    first = items(5)
    once = encoder.items(first, 0.5, catalogue=True)
    assert encoder.items(first, 0.5, catalogue=True) == once
    renamed = [s._replace(item=ItemMeta(ItemContent(f"other-{i}"))) for i, s in enumerate(first)]
    assert b"other-0" in encoder.items(renamed, 0.5, catalogue=True)  # new objects: not the old bytes
    assert len(encoder._fixed) <= 3
    assert encoder.items(first, 0.5, catalogue=False) == once


def test_varint() -> None:
    assert [varint(v) for v in (0, 1, 127, 128, 300, 16384)] == [
        b"\x00", b"\x01", b"\x7f", b"\x80\x01", b"\xac\x02", b"\x80\x80\x01",
    ]  # fmt: skip
