"""The viral_scoring part of `creatormesh demo`: score scripts and videos (two-stage) with their E/H/R/S/T
breakdown and safety verdicts, rerank generated scripts by log P + eta * V, and score a real clip arriving on
`clips.created` into `content.scored` (which ranking and allocation consume)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common import client, kafka_compat, topics
from creatormesh.common.demo import DemoContext
from creatormesh.common.runtime.mesh import say
from creatormesh.common.sample_media import make_video
from creatormesh.events.v1 import clips_pb2
from creatormesh.stream_clipper.v1 import stream_clipper_pb2
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb
from creatormesh.viral_scoring.v1 import viral_scoring_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["ViralScoringService"]
HEADERS = ["item", "stage", "V", "E", "H", "R", "S", "T", "safety"]
ITEMS = [
    ("I tried the 3-ingredient pasta everyone is talking about", ["recipe", "pasta", "challenge"], 26),
    ("Wait for the ending: my dog learns to skateboard!", ["dogs", "skateboard", "funny"], 15),
    ("Quarterly earnings call, full recording", ["finance"], 25),
    ("You won't believe this miracle cure doctors hate", ["health"], 22),
    ("Free crypto giveaway scam, send 1 BTC get 2 back", ["crypto"], 28),
    ("How I learned a song on guitar in 24 hours", ["guitar", "music", "challenge"], 10),
    ("Relaxing rain sounds for sleep, 10 hours", ["sleep", "asmr"], 10),
    ("TOP 10 goals of the season so far", ["football", "goals", "soccer"], 17),
]
SCRIPTS = [
    ("Wait, don't scroll! Here is the one trick that made my bread rise twice as high. Try it tonight.", -38.0),
    ("Today I will talk about bread. Bread is made of flour and water. It is baked in an oven.", -31.0),
    ("This bread hack went viral for a reason: three steps, zero kneading, and you will never buy bread again.", -41.0),
    ("Bread. Flour. Water. Salt. Oven. Done.", -29.0),
    ("Free bread giveaway scam: send me your card number and get ten loaves.", -36.0),
]


def row(label: str, s: pb.ViralScore) -> Sequence[Any]:
    sub = s.subscores
    verdict = "BLOCKED" if s.safety.blocked else (f"-{s.safety.penalty:.0%}" if s.safety.penalty else "ok")
    return [
        label[:48], pb.Stage.Name(s.stage).removeprefix("STAGE_").lower(), f"{s.v:.3f}",
        f"{sub.emotion_intensity:.2f}", f"{sub.hook_strength:.2f}", f"{sub.replicability:.2f}",
        f"{sub.share_trigger:.2f}", f"{sub.trend_match:.2f}", verdict,
    ]  # fmt: skip


async def run(ctx: DemoContext) -> None:
    section = ctx.report.section("Viral scoring: V = σ(αE+βH+γR+δS+εT), safety, rerank, clips → content.scored")
    stub = viral_scoring_pb2_grpc.ViralScoringServiceStub(
        client.channel(ctx.target("viral_scoring"), SERVICE, deadline=120)
    )
    info = await stub.GetModelInfo(pb.GetModelInfoRequest())
    c = info.coefficients
    section.summary.append(
        f"model {info.model_version}: V = σ({c.alpha:.2f}E + {c.beta:.2f}H + {c.gamma:.2f}R + {c.delta:.2f}S + "
        f"{c.epsilon:.2f}T {c.bias:+.2f}); held-out Spearman "
        + ", ".join(f"{e.name} {e.spearman:.3f}" for e in info.training.evaluations)
    )
    items = [
        pb.ContentItem(id=f"demo-{i}", kind=pb.CONTENT_KIND_SCRIPT, title=t, tags=tags, category_id=cat)
        for i, (t, tags, cat) in enumerate(ITEMS)
    ]
    options = pb.ScoringOptions(mode=pb.SCORING_MODE_TWO_STAGE, top_fraction=0.5)
    say(f"demo      viral_scoring: ScoreBatch of {len(items)} items, two-stage (light on all, full on the top half)")
    batch = await stub.ScoreBatch(pb.ScoreBatchRequest(items=items, options=options))
    section.tables.append((HEADERS, [row(t, s) for (t, _, _), s in zip(ITEMS, batch.scores, strict=True)]))
    blocked = [s for s in batch.scores if s.safety.blocked]
    penalised = [s for s in batch.scores if s.safety.penalty and not s.safety.blocked]
    block_reason = "; ".join(blocked[0].safety.reasons) if blocked else "-"
    penalty_reason = "; ".join(penalised[0].safety.reasons) if penalised else "-"
    section.summary.append(
        f"{len(items)} items scored: {sum(s.stage == pb.STAGE_FULL for s in batch.scores)} by the full model, "
        f"the rest by the light one; {len(blocked)} blocked ({block_reason}), {len(penalised)} penalised "
        f"({penalty_reason})"
    )

    cands = [pb.RerankCandidate(id=f"s{i}", text=t, log_prob=lp, token_count=24) for i, (t, lp) in enumerate(SCRIPTS)]
    say(f"demo      viral_scoring: Rerank {len(cands)} generated scripts by log P + eta*V")
    reranked = await stub.Rerank(
        pb.RerankRequest(candidates=pb.RerankCandidates(candidates=cands), eta=20.0, normalize_by_length=False)
    )
    lm_best = max(range(len(SCRIPTS)), key=lambda i: SCRIPTS[i][1])
    section.tables.append(
        (
            ["rank", "script", "log P", "V", "log P + 20 V", "safety"],
            [
                [
                    r.rank,
                    r.text[:60],
                    f"{r.log_prob:.1f}",
                    f"{r.score.v:.3f}",
                    f"{r.combined_score:.2f}",
                    "BLOCKED" if r.score.safety.blocked else "ok",
                ]
                for r in reranked.candidates
            ],
        )
    )
    section.summary.append(
        f"rerank: the LM alone would pick s{lm_best}; log P + 20·V picks {reranked.candidates[0].id}; "
        f"the scam script is last ({reranked.candidates[-1].id})"
    )

    clip_id = await publish_clip(ctx)
    scored = await asyncio.to_thread(
        kafka_compat.read_events, ctx.state.kafka_bootstrap, topics.CONTENT_SCORED, lambda p: p.content_id == clip_id
    )
    if scored:
        s = scored[0]
        modalities = ", ".join(pb.Modality.Name(m).removeprefix("MODALITY_").lower() for m in s.modalities)
        say(f"demo      viral_scoring: {clip_id} → {topics.CONTENT_SCORED} V={s.v:.3f} ({modalities})")
        section.summary.append(
            f"clip {clip_id} (real 4 s video with audio) from {topics.CLIPS_CREATED} → {topics.CONTENT_SCORED}: "
            f"V {s.v:.3f}, E {s.subscores.emotion_intensity:.2f} H {s.subscores.hook_strength:.2f} "
            f"R {s.subscores.replicability:.2f} S {s.subscores.share_trigger:.2f} T {s.subscores.trend_match:.2f}; "
            f"modalities: {modalities}"
        )
    section.ok = (
        len(batch.scores) == len(items)
        and bool(blocked)
        and reranked.candidates[-1].score.safety.blocked
        and bool(scored)
        and scored[0].model_version == info.model_version
    )


async def publish_clip(ctx: DemoContext) -> str:
    clip_id = f"clip-demo-{uuid.uuid4().hex[:8]}"
    media = await asyncio.to_thread(make_video, ctx.workdir / f"{clip_id}.mp4", seconds=4.0, cuts=2)
    event = clips_pb2.ClipCreated(
        clip_id=clip_id, stream_id="demo-stream", streamer="streamer-demo", start_seconds=120, end_seconds=124,
        duration_seconds=4, transcript="No way! He actually landed it. That is a new world record, chat!",
        language="en", score=stream_clipper_pb2.ScoreParts(matched_keywords=["no way", "world record"]),
        rendered_media_uri=str(media), created_at=Timestamp(seconds=int(time.time())),
    )  # fmt: skip
    say(f"demo      viral_scoring: clip {clip_id} on {topics.CLIPS_CREATED}")
    await ctx.bus.publish(topics.CLIPS_CREATED, event, subject=clip_id)
    return clip_id
