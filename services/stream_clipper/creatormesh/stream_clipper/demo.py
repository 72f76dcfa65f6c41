"""The stream_clipper part of `creatormesh demo`: process a generated 3-minute stream over gRPC (server-streamed
progress), render its clips, show a frame of each in the report, and follow them through the mesh: `clips.created`
→ viral_scoring → `content.scored` → the clip's viral score."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from creatormesh.common import client
from creatormesh.common.demo import DemoContext
from creatormesh.common.runtime.mesh import say
from creatormesh.stream_clipper.sources import local_path
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb
from creatormesh.stream_clipper.v1 import stream_clipper_pb2_grpc
from creatormesh.stream_clipper.vodgen import make_vod

SERVICE = pb.DESCRIPTOR.services_by_name["StreamClipperService"]
HEADERS = ["clip", "seconds", "total", "energy", "keywords", "scene", "chat", "matched", "label", "V"]


def _label(start: float, end: float, labelled: list[tuple[float, float, str]]) -> str:
    best = max(labelled, key=lambda s: min(end, s[1]) - max(start, s[0]), default=None)
    if best is None or min(end, best[1]) - max(start, best[0]) <= 0:
        return "calm"
    return best[2]


async def run(ctx: DemoContext) -> None:
    section = ctx.report.section("Stream clipper: 3-minute stream → highlights → 9:16 clips → viral scores")
    stub = stream_clipper_pb2_grpc.StreamClipperServiceStub(
        client.channel(ctx.target("stream_clipper"), SERVICE, deadline=900)
    )
    say("demo      stream_clipper: generating a labelled 3-minute stream (ffmpeg + espeak-ng)")
    vod = await asyncio.to_thread(make_vod, ctx.workdir / "clipper" / "stream.mp4", seconds=180.0, seed=1)
    labelled = [(s.start, s.end, s.kind) for s in vod.segments if s.kind != "calm"]
    request = pb.ProcessVodRequest(
        request_id=f"demo-{uuid.uuid4().hex[:8]}", source_uri=str(vod.path.resolve()), streamer="demo_streamer",
        options=pb.ClipOptions(max_clips=3, min_duration_seconds=8, max_duration_seconds=30),
    )  # fmt: skip
    started = time.perf_counter()
    clips: list[pb.Clip] = []
    last = ""
    async for update in stub.ProcessVod(request):
        stage = pb.Stage.Name(update.stage).removeprefix("STAGE_").lower()
        if update.HasField("clip"):
            clips.append(update.clip)
            say(f"demo      stream_clipper: clip {update.clip.clip_id} {update.clip.start_seconds:.1f}-"
                f"{update.clip.end_seconds:.1f} s rendered")  # fmt: skip
        elif update.message != last:
            say(f"demo      stream_clipper: {update.fraction:4.0%} {stage}: {update.message}")
            last = update.message
        if update.stage == pb.STAGE_FAILED:
            raise RuntimeError(f"ProcessVod failed: {update.error}")
    elapsed = time.perf_counter() - started
    job = (await stub.GetJob(pb.GetJobRequest(job_id=update.job_id))).job
    stages = ", ".join(f"{k.removeprefix('STAGE_').lower()} {v:.1f} s" for k, v in job.stage_seconds.items())
    section.summary.append(
        f"{vod.duration_s:.0f} s stream processed in {elapsed:.1f} s ({elapsed / vod.duration_s:.2f}× real time): "
        f"{stages}. Labelled windows: " + ", ".join(f"{a:.0f}-{b:.0f} s {k}" for a, b, k in labelled)
    )
    say("demo      stream_clipper: waiting for viral_scoring to score the clips (clips.created → content.scored)")
    scored = await _wait_scored(stub, [c.clip_id for c in clips], timeout=180.0)
    images = ctx.workdir / "clipper" / "frames"
    images.mkdir(parents=True, exist_ok=True)
    rows: list[Sequence[Any]] = []
    for clip in scored:
        s = clip.score
        v = f"{clip.viral_score:.3f}" if clip.HasField("viral_score") else "-"
        rows.append([
            clip.clip_id[-6:], f"{clip.start_seconds:.1f}-{clip.end_seconds:.1f}", f"{s.total:.2f}",
            f"{s.energy:.2f}", f"{s.keywords:.2f}", f"{s.scene:.2f}", f"{s.chat:.2f}",
            ", ".join(s.matched_keywords[:4]) or "-", _label(clip.start_seconds, clip.end_seconds, labelled), v,
        ])  # fmt: skip
        thumb = local_path(clip.thumbnail_uri) if clip.thumbnail_uri else None
        if thumb is not None and thumb.is_file():
            target = images / f"{clip.clip_id}.jpg"
            shutil.copyfile(thumb, target)
            caption = f"{clip.start_seconds:.0f}-{clip.end_seconds:.0f} s: {clip.transcript[:80] or '(no words)'}"
            section.images.append((str(Path("clipper") / "frames" / target.name), caption))
    section.tables.append((HEADERS, rows))
    with_score = sum(c.HasField("viral_score") for c in scored)
    section.summary.append(f"{len(scored)} clips rendered at 1080×1920; {with_score} scored by viral_scoring")
    section.ok = bool(scored) and with_score == len(scored)


async def _wait_scored(stub: Any, clip_ids: list[str], timeout: float) -> list[pb.Clip]:
    deadline = time.monotonic() + timeout
    while True:
        clips = [(await stub.GetClip(pb.GetClipRequest(clip_id=c))).clip for c in clip_ids]
        if all(c.HasField("viral_score") for c in clips) or time.monotonic() > deadline:
            return clips
        await asyncio.sleep(2.0)
