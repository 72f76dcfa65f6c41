"""ViralScoringService over gRPC: contract, modes, safety, rerank, model info, invalid input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from creatormesh.common import grpc_errors
from creatormesh.common.sample_media import make_video
from creatormesh.viral_scoring.app import ViralScoringService
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["ViralScoringService"]
pytestmark = pytest.mark.usefixtures("close_channels")


@pytest_asyncio.fixture
async def viral(start_service: Any) -> tuple[Any, ViralScoringService]:
    stub, service = await start_service()
    return stub, service


def item(i: int | str, **fields: Any) -> pb.ContentItem:
    defaults: dict[str, Any] = {
        "title": f"I tried the viral pasta recipe number {i}",
        "tags": ["cooking", "recipe", "pasta"],
        "category_id": 26,
        "description": "Quick dinner idea. Watch till the end!",
    }
    return pb.ContentItem(id=str(i), kind=pb.CONTENT_KIND_VIDEO, **{**defaults, **fields})


def violation(err: grpc.aio.AioRpcError) -> str:
    fields = [f for f, _ in grpc_errors.field_violations(err)]
    assert len(fields) == 1, fields
    return fields[0]


async def test_score_returns_v_subscores_and_the_model_that_made_them(viral: Any) -> None:
    stub, service = viral
    reply = await stub.Score(pb.ScoreRequest(item=item(1), options=pb.ScoringOptions(mode=pb.SCORING_MODE_FULL)))
    s = reply.score
    assert s.content_id == "1" and 0 < s.v < 1 and s.v == pytest.approx(s.v_unpenalized)
    sub = s.subscores
    for value in (sub.emotion_intensity, sub.hook_strength, sub.replicability, sub.share_trigger, sub.trend_match):
        assert 0 <= value <= 1
    assert s.stage == pb.STAGE_FULL and s.model_version == service.model_version
    assert set(s.modalities) == {pb.MODALITY_TEXT, pb.MODALITY_TEMPORAL}  # tags give trend features; no behaviour
    info = await stub.GetModelInfo(pb.GetModelInfoRequest())
    c = info.coefficients
    z = (
        c.alpha * sub.emotion_intensity + c.beta * sub.hook_strength + c.gamma * sub.replicability
        + c.delta * sub.share_trigger + c.epsilon * sub.trend_match + c.bias
    )  # fmt: skip
    assert s.v == pytest.approx(1 / (1 + 2.718281828459045 ** (-z)), abs=1e-5)


async def test_behaviour_is_used_when_present(viral: Any) -> None:
    stub, _ = viral
    signals = pb.BehaviouralSignals(likes=50_000, dislikes=300, comment_count=4_000, watch_through=0.7)
    reply = await stub.Score(pb.ScoreRequest(item=item(2, behaviour=signals)))
    assert pb.MODALITY_BEHAVIOURAL in reply.score.modalities


async def test_media_modalities_come_from_real_files(viral: Any, tmp_path: Path) -> None:
    stub, _ = viral
    video = make_video(tmp_path / "clip.mp4", seconds=2.0, cuts=1)
    media = pb.MediaRefs(video_uri=str(video))
    reply = await stub.Score(
        pb.ScoreRequest(item=item(3, media=media), options=pb.ScoringOptions(mode=pb.SCORING_MODE_FULL))
    )
    assert {pb.MODALITY_VISUAL, pb.MODALITY_AUDIO} <= set(reply.score.modalities)


async def test_a_configured_keyframe_encoder_is_loaded_and_used(start_service: Any, tmp_path: Path) -> None:
    from creatormesh.viral_scoring.visual import build_tiny_clip

    stub, service = await start_service(keyframe_encoder_path=str(build_tiny_clip(tmp_path / "clip")))
    assert service.scorer.keyframe_encoder is not None
    video = make_video(tmp_path / "clip.mp4", seconds=1.0, with_audio=False)
    request = pb.ScoreRequest(item=item(9, media=pb.MediaRefs(video_uri=str(video))))
    reply = await stub.Score(request)
    assert pb.MODALITY_VISUAL in reply.score.modalities and pb.MODALITY_AUDIO not in reply.score.modalities


async def test_two_stage_rescores_the_top_fraction_with_the_full_model(viral: Any) -> None:
    stub, _ = viral
    items = [
        item(i, title=t)
        for i, t in enumerate(["cat", "HOW I WON $1000 in 24 hours!!", "notes", "you need this hack"] * 2)
    ]
    options = pb.ScoringOptions(mode=pb.SCORING_MODE_TWO_STAGE, top_fraction=0.25)
    reply = await stub.ScoreBatch(pb.ScoreBatchRequest(items=items, options=options))
    assert [s.content_id for s in reply.scores] == [str(i) for i in range(8)]
    stages = [s.stage for s in reply.scores]
    assert stages.count(pb.STAGE_FULL) == 2 and stages.count(pb.STAGE_LIGHT) == 6
    light = await stub.ScoreBatch(
        pb.ScoreBatchRequest(items=items, options=pb.ScoringOptions(mode=pb.SCORING_MODE_LIGHT))
    )
    ranked = sorted(range(8), key=lambda i: -light.scores[i].v_unpenalized)
    full_ids = {s.content_id for s in reply.scores if s.stage == pb.STAGE_FULL}
    assert full_ids == {str(i) for i in ranked[:2]}
    quantized = await stub.ScoreBatch(
        pb.ScoreBatchRequest(items=items, options=pb.ScoringOptions(mode=pb.SCORING_MODE_QUANTIZED))
    )
    full = await stub.ScoreBatch(
        pb.ScoreBatchRequest(items=items, options=pb.ScoringOptions(mode=pb.SCORING_MODE_FULL))
    )
    for q, f in zip(quantized.scores, full.scores, strict=True):
        assert q.stage == pb.STAGE_QUANTIZED and abs(q.v - f.v) < 0.05


async def test_safety_blocks_or_penalises_with_the_reason(viral: Any) -> None:
    stub, _ = viral
    blocked = await stub.Score(pb.ScoreRequest(item=item(4, title="Join the giveaway scam now")))
    assert blocked.score.safety.blocked and blocked.score.v == 0 and blocked.score.v_unpenalized > 0
    assert any("giveaway scam" in r for r in blocked.score.safety.reasons)
    clickbait = await stub.Score(pb.ScoreRequest(item=item(5, title="This miracle cure doctors hate")))
    clean = await stub.Score(pb.ScoreRequest(item=item(5, title="This soup recipe chefs love")))
    assert 0 < clickbait.score.safety.penalty < 1 and not clickbait.score.safety.blocked
    assert clickbait.score.v == pytest.approx(clickbait.score.v_unpenalized * (1 - clickbait.score.safety.penalty))
    assert clean.score.safety.penalty == 0


async def test_rerank_orders_by_log_p_plus_eta_v_and_puts_blocked_last(viral: Any) -> None:
    stub, _ = viral
    texts = [
        "Wait for the ending, you will not believe this trick!",
        "A calm morning routine.",
        "Free crypto giveaway scam",
    ]
    cands = [pb.RerankCandidate(id=f"c{i}", text=t, log_prob=-10.0 - i, token_count=10) for i, t in enumerate(texts)]
    reply = await stub.Rerank(pb.RerankRequest(candidates=pb.RerankCandidates(candidates=cands), eta=5.0))
    assert reply.eta == 5.0 and reply.lm_model == ""
    out = list(reply.candidates)
    assert out[-1].id == "c2" and out[-1].score.safety.blocked
    assert [c.rank for c in out] == [1, 2, 3]
    for c in out:
        assert c.combined_score == pytest.approx(c.log_prob + 5.0 * c.score.v)
    assert out[0].combined_score >= out[1].combined_score
    normalised = await stub.Rerank(
        pb.RerankRequest(candidates=pb.RerankCandidates(candidates=cands), eta=0.0, normalize_by_length=True)
    )
    assert normalised.candidates[0].combined_score == pytest.approx(-1.0)


async def test_rerank_from_a_prompt_without_an_endpoint_is_a_failed_precondition(viral: Any) -> None:
    stub, _ = viral
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Rerank(pb.RerankRequest(generation=pb.GenerationOptions(prompt="write a hook")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_model_info_describes_the_variants_and_the_metrics(viral: Any) -> None:
    stub, service = viral
    info = await stub.GetModelInfo(pb.GetModelInfoRequest())
    assert info.model_version == service.model_version
    assert {v.stage for v in info.variants} == {pb.STAGE_LIGHT, pb.STAGE_FULL, pb.STAGE_QUANTIZED}
    assert {e.name for e in info.training.evaluations} == {"content_only", "with_behaviour"}
    assert info.training.test_samples > 0 and info.safety_rules_version and info.default_eta == 1.0
    assert min(info.coefficients.alpha, info.coefficients.beta, info.coefficients.epsilon) > 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ScoreRequest(), "item"),
        (pb.ScoreRequest(item=pb.ContentItem(title="x")), "item.id"),
        (pb.ScoreRequest(item=pb.ContentItem(id="a", tags=["x" * 101])), "item.tags[0]"),
        (
            pb.ScoreRequest(item=pb.ContentItem(id="a", behaviour=pb.BehaviouralSignals(early_ctr=1.5))),
            "item.behaviour.early_ctr",
        ),
        (
            pb.ScoreRequest(item=pb.ContentItem(id="a", behaviour=pb.BehaviouralSignals(likes=-1))),
            "item.behaviour.likes",
        ),
        (
            pb.ScoreRequest(item=pb.ContentItem(id="a", media=pb.MediaRefs(video_uri="/no/such.mp4"))),
            "item.media.video_uri",
        ),
        (
            pb.ScoreRequest(item=pb.ContentItem(id="a", media=pb.MediaRefs(keyframes=[pb.Image()]))),
            "item.media.keyframes[0].source",
        ),
        (
            pb.ScoreRequest(item=pb.ContentItem(id="a"), options=pb.ScoringOptions(top_fraction=0)),
            "options.top_fraction",
        ),
    ],
)
async def test_bad_score_requests_name_the_field(viral: Any, request_: pb.ScoreRequest, field: str) -> None:
    stub, _ = viral
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Score(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(err.value) == field


C0 = "candidates.candidates[0]"


def given(*candidates: pb.RerankCandidate, **fields: Any) -> pb.RerankRequest:
    return pb.RerankRequest(candidates=pb.RerankCandidates(candidates=candidates), **fields)


async def test_bad_batch_and_rerank_requests_name_the_field(viral: Any) -> None:
    stub, _ = viral
    cases: list[tuple[Any, Any, str]] = [
        (stub.ScoreBatch, pb.ScoreBatchRequest(), "items"),
        (stub.ScoreBatch, pb.ScoreBatchRequest(items=[item(1), item(1)]), "items[1].id"),
        (stub.Rerank, pb.RerankRequest(), "source"),
        (stub.Rerank, given(pb.RerankCandidate(text="a", log_prob=1.0)), f"{C0}.log_prob"),
        (stub.Rerank, given(pb.RerankCandidate(text="a"), normalize_by_length=True), f"{C0}.token_count"),
        (stub.Rerank, given(pb.RerankCandidate(text="")), f"{C0}.text"),
        (stub.Rerank, given(pb.RerankCandidate(text="a"), eta=-1), "eta"),
        (stub.Rerank, pb.RerankRequest(generation=pb.GenerationOptions(prompt="p", n=65)), "generation.n"),
    ]  # fmt: skip
    for method, request_, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await method(request_)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violation(err.value) == field
