"""video_diffusion job overhead on this machine: what the queue, database, storage, encoding and events add to a job,
as a share of its total time, with the tiny random Wan pipeline.

Baseline, measured in the same run: the engine alone (`Engine.generate` of the same candidates, same params and
seeds, in this process). Then the same work as jobs: the service in-process (real Redis queue, SQLite, local storage,
outbox), SubmitGeneration over gRPC and WatchJob until the job is done. Overhead share = 1 - baseline / job time.
The denoising is tiny here, so the share is an upper bound: on a GPU with the real model a candidate takes seconds
and the same fixed costs become a small fraction (see docs/services/video_diffusion.md).

    .venv/bin/python benchmarks/video_diffusion.py [--jobs 5] [--candidates 5] [--steps 4] [--size 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from creatormesh.common import client
from creatormesh.common.redis_pool import ping
from creatormesh.common.runtime.redis_server import EmbeddedRedis
from creatormesh.common.server import Server, build_runtime
from creatormesh.common.settings import KitSettings
from creatormesh.video_diffusion.app import VideoDiffusionService
from creatormesh.video_diffusion.builder import build_tiny
from creatormesh.video_diffusion.engine import Engine
from creatormesh.video_diffusion.limits import Params
from creatormesh.video_diffusion.settings import VideoDiffusionSettings
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb
from creatormesh.video_diffusion.v1 import video_diffusion_pb2_grpc

PROMPT = "a runner in red sneakers on a city street at sunset"


def engine_only(engine: Engine, params: Params, candidates: int) -> float:
    started = time.perf_counter()
    for i in range(candidates):
        engine.generate(replace(params, seed=params.seed + i))
    return time.perf_counter() - started


async def jobs(model: Path, work: Path, redis_url: str, args: argparse.Namespace) -> list[float]:
    kit = KitSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, redis_url=redis_url, drain_delay_seconds=0)
    settings = VideoDiffusionSettings(
        model_dir=str(model), database_url=f"sqlite:///{work / 'jobs.db'}", storage=str(work / "media"),
        work_dir=str(work / "work"), queue_key=f"vd-bench:{uuid.uuid4().hex[:8]}", drift_reference_size=10,
        drift_window_size=10,
    )  # fmt: skip
    server = Server(VideoDiffusionService(build_runtime(kit, "video_diffusion"), settings))
    port = await server.start()
    service = pb.DESCRIPTOR.services_by_name["VideoDiffusionService"]
    stub: Any = video_diffusion_pb2_grpc.VideoDiffusionServiceStub(
        client.channel(f"127.0.0.1:{port}", service, deadline=600)
    )
    params = pb.GenerationParams(
        prompt=PROMPT, num_frames=args.frames, fps=8, width=args.size, height=args.size,
        num_inference_steps=args.steps, seed=0, num_candidates=args.candidates, vary_prompt=False,
    )  # fmt: skip
    times = []
    try:
        for _ in range(args.jobs):
            started = time.perf_counter()
            job = (await stub.SubmitGeneration(
                pb.SubmitGenerationRequest(request_id=uuid.uuid4().hex, user_id="bench", params=params)
            )).job  # fmt: skip
            async for update in stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id)):
                last = update
            times.append(time.perf_counter() - started)
            assert last.status == pb.JOB_STATUS_SUCCEEDED, last
    finally:
        await server.stop()
        await client.close_all()
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    redis_server = None
    redis_url = "redis://127.0.0.1:6379/0"
    if not await ping(redis_url):
        redis_server = EmbeddedRedis()
        redis_url = redis_server.start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_tiny(work / "tiny-wan")
        engine = Engine.load(model)
        engine.warm_up()
        params = Params(PROMPT, "", args.frames, 8, args.size, args.size, args.steps, 5.0, 0)
        before = [engine_only(engine, params, args.candidates) for _ in range(args.jobs)]
        job_times = await jobs(model, work, redis_url, args)
        after = [engine_only(engine, params, args.candidates) for _ in range(args.jobs)]
    if redis_server is not None:
        redis_server.stop()
    baseline = statistics.median(before + after)
    job = statistics.median(job_times)
    print(f"{args.jobs} jobs x {args.candidates} candidates, {args.frames} frames {args.size}x{args.size}, "
          f"{args.steps} steps, torch threads 1")  # fmt: skip
    print(f"{'what':45s} {'median s':>9s} {'x baseline':>11s}")
    print(f"{'engine only (baseline, before+after)':45s} {baseline:9.3f} {1.0:10.2f}x")
    print(f"{'job: gRPC + queue + DB + MP4 + storage + events':45s} {job:9.3f} {job / baseline:10.2f}x")
    per_candidate = (job - baseline) / args.candidates
    print(f"overhead share of a job: {1 - baseline / job:.1%} ({per_candidate:.3f} s per candidate)")


if __name__ == "__main__":
    asyncio.run(main())
