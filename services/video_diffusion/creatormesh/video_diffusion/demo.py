"""The video_diffusion part of `creatormesh demo`: a prompt goes in through Kafka (`videos.requested`), the job's
progress streams over gRPC, the 5 candidates are shown as frame strips in the report, one is picked, and the
preference count and the `preferences.recorded` event are shown."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from creatormesh.common import client, kafka_compat, topics
from creatormesh.common.demo import DemoContext
from creatormesh.common.media import read_frames
from creatormesh.common.runtime.mesh import say
from creatormesh.events.v1 import videos_pb2
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb
from creatormesh.video_diffusion.v1 import video_diffusion_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["VideoDiffusionService"]
PROMPT = "a runner in bright red sneakers on a city street at sunset, slow motion"


def frame_strip(video: Path, out: Path, count: int = 6, height: int = 128) -> Path:
    """``count`` evenly spaced frames of ``video`` side by side (nearest-neighbour scaled to ``height``)."""
    frames = read_frames(video)
    h = frames.shape[1]
    picks = [frames[round(i)] for i in np.linspace(0, len(frames) - 1, min(count, len(frames)))]
    strip = Image.fromarray(np.concatenate(picks, axis=1))
    scale = height / h
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.resize((round(strip.width * scale), height), Image.Resampling.NEAREST).save(out)
    return out


async def run(ctx: DemoContext) -> None:
    section = ctx.report.section("Video diffusion: prompt via Kafka → 5 candidates → a pick → retraining counter")
    stub: Any = video_diffusion_pb2_grpc.VideoDiffusionServiceStub(
        client.channel(ctx.target("video_diffusion"), SERVICE, deadline=600)
    )
    request_id = f"demo-{uuid.uuid4().hex[:8]}"
    params = pb.GenerationParams(prompt=PROMPT, num_frames=16, fps=8, width=64, height=64, num_inference_steps=4)
    say(f"demo      video_diffusion: videos.requested {request_id}: {PROMPT!r} (5 candidates, 16 frames, 4 steps)")
    started = time.perf_counter()
    await ctx.bus.publish(
        topics.VIDEOS_REQUESTED,
        videos_pb2.VideoRequested(request_id=request_id, user_id="demo_user", params=params),
        subject=request_id,
    )
    first = await asyncio.to_thread(
        kafka_compat.read_events, ctx.bus.bootstrap, topics.VIDEOS_GENERATED,
        lambda e: e.request_id == request_id, 1, 300.0,
    )  # fmt: skip
    if not first:
        raise RuntimeError("no videos.generated event for the demo request within 300 s")
    job_id = first[0].job_id
    waited = time.perf_counter() - started
    say(f"demo      video_diffusion: job {job_id} running; first candidate ready after {waited:.1f} s")
    last = ""
    async for update in stub.WatchJob(pb.WatchJobRequest(job_id=job_id)):
        if update.HasField("candidate") or (update.message != last and update.step in (0, update.total_steps)):
            say(f"demo      video_diffusion: {update.fraction:4.0%} {update.message}")
        last = update.message
    job = (await stub.GetJob(pb.GetJobRequest(job_id=job_id))).job
    elapsed = time.perf_counter() - started
    rows: list[Sequence[Any]] = []
    for c in job.candidates:
        q = c.quality
        rows.append([
            c.index, c.prompt[len(PROMPT):].lstrip(", ") or "(as submitted)", c.seed, f"{c.generation_seconds:.2f}",
            f"{q.clip_score:.3f}" if q.HasField("clip_score") else "-",
            f"{q.temporal_consistency:.3f}" if q.HasField("temporal_consistency") else "-",
            f"{q.flicker:.4f}" if q.HasField("flicker") else "-",
        ])  # fmt: skip
        if c.status == pb.CANDIDATE_STATUS_SUCCEEDED:
            strip = await asyncio.to_thread(
                frame_strip, Path(c.video_url), ctx.workdir / "video_diffusion" / f"candidate-{c.index}.png"
            )
            section.images.append((str(strip.relative_to(ctx.workdir)), f"candidate {c.index}: {c.prompt}"))
    section.tables.append((["#", "prompt variation", "seed", "seconds", "CLIP", "temporal", "flicker"], rows))
    ready = [c for c in job.candidates if c.status == pb.CANDIDATE_STATUS_SUCCEEDED]
    if not ready:
        raise RuntimeError(f"job {job_id} produced no video: {job.error}")
    chosen = min(ready, key=lambda c: c.quality.flicker if c.quality.HasField("flicker") else 1.0)
    pick = await stub.SelectCandidate(
        pb.SelectCandidateRequest(job_id=job_id, candidate_id=chosen.candidate_id, user_id="demo_user")
    )
    say(f"demo      video_diffusion: picked candidate {chosen.index}; {pick.picks_total} picks, "
        f"{pick.picks_since_retrain}/{pick.retrain_threshold} towards the next LoRA retraining")  # fmt: skip
    prefs = await asyncio.to_thread(
        kafka_compat.read_events, ctx.bus.bootstrap, topics.PREFERENCES_RECORDED, lambda e: e.job_id == job_id, 1, 60.0
    )
    section.summary.append(
        f"{len(ready)}/{len(job.candidates)} candidates of {job.model} in {elapsed:.1f} s "
        f"(queue {job.timings.queue_seconds:.1f} s, generation {job.timings.generation_seconds:.1f} s) from a "
        f"videos.requested event; picked candidate {chosen.index} (least flicker): {pick.picks_total} picks in total, "
        f"{pick.picks_since_retrain}/{pick.retrain_threshold} towards retrain.requested; "
        f"preferences.recorded seen on Kafka: {'yes' if prefs else 'no'}."
    )
    section.ok = len(ready) == len(job.candidates) and bool(prefs)
