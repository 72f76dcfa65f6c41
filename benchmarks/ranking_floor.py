"""What a Python gRPC server pays for a 50-item RankForYou page before any ranking: the ceiling for the
ranking service's throughput goal, measured against echo in the same run.

One server process (grpc.aio with the kit's interceptor, like every service) serves EchoService and a
RankingService whose RankForYou does only part of the real work, by MODE:

- ``fixed``: returns one 50-item response built at start (gRPC + protobuf encoding only);
- ``build``: builds the 50-item response per call with the service's own ``page_pb``;
- ``features``: also reads the viewer's features from Redis the way the service does (batched).

    .venv/bin/python benchmarks/ranking_floor.py [--duration 4] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from typing import Any

import grpc
from loadgen import drive, serve_until_sigterm
from redis.asyncio import Redis

from creatormesh.common.batching import Batcher
from creatormesh.common.echo import EchoServicer
from creatormesh.common.interceptors import KitServerInterceptor
from creatormesh.common.runtime.processes import free_port
from creatormesh.ranking import abtest
from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.features import FeatureStore, InteractionRecord, UserFeatures
from creatormesh.ranking.ranker import WARM, Page, ScoredItem
from creatormesh.ranking.recommender import ItemContent
from creatormesh.ranking.servicer import page_pb
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc

MODES = ("fixed", "build", "features")
VIEWERS = 500


def sample_page() -> Page:
    items = [
        ScoredItem(
            ItemMeta(ItemContent(f"item-{i}", genres=("comedy", "drama"), hashtags=("funny",)), f"creator-{i}"),
            0.9 - i / 100,
            0.7,
            0.6,
            0.5,
            0.4,
            0.5,
            0.01,
        )
        for i in range(50)
    ]
    return Page(items, WARM, 1.0, "index", 0.8, 0.9, 350, "rk-sample")


class PartialRanking(ranking_pb2_grpc.RankingServiceServicer):
    def __init__(self, mode: str, features: FeatureStore) -> None:
        self.mode, self.page = mode, sample_page()
        self.fixed = page_pb(self.page, "overdrive", abtest.Arm(abtest.OVERDRIVE, abtest.HEADER))
        self.batcher: Batcher[str, UserFeatures] = Batcher(features.features_many)

    async def RankForYou(self, request: pb.RankForYouRequest, context: Any) -> pb.RankForYouResponse:
        if self.mode == "fixed":
            return self.fixed
        if self.mode == "features":
            await self.batcher.submit(request.user_id)
        return page_pb(self.page, "overdrive", abtest.Arm(abtest.OVERDRIVE, abtest.HEADER))


async def serve(mode: str, port: int, redis_url: str, prefix: str) -> None:
    server = grpc.aio.server(interceptors=[KitServerInterceptor()])
    echo_pb2_grpc.add_EchoServiceServicer_to_server(EchoServicer(), server)
    features = FeatureStore(Redis.from_url(redis_url), prefix=prefix)
    partial = PartialRanking(mode, features)  # type: ignore[abstract]  # only RankForYou is measured
    ranking_pb2_grpc.add_RankingServiceServicer_to_server(partial, server)
    await serve_until_sigterm(server, port)


async def store_viewers(redis_url: str, prefix: str) -> list[str]:
    store = FeatureStore(Redis.from_url(redis_url), prefix=prefix)
    viewers = [f"floor-{v}" for v in range(VIEWERS)]
    now = time.time()
    for v in viewers:
        await asyncio.gather(*(
            store.record(f"{v}-{i}", InteractionRecord(v, f"item-{i}", "complete", now - i, genres=("comedy",)))
            for i in range(30)
        ))  # fmt: skip
    return viewers


async def measure(mode: str, viewers: list[str], args: argparse.Namespace, prefix: str) -> tuple[float, float]:
    """(echo calls/s, RankForYou calls/s) against one fresh server process in ``mode``."""
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", mode, str(port), args.redis_url, prefix]
    proc = await asyncio.create_subprocess_exec(*cmd)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await channel.channel_ready()
            echo = echo_pb2_grpc.EchoServiceStub(channel)
            rank = ranking_pb2_grpc.RankingServiceStub(channel)
            turn = iter(range(1 << 62))
            base = await drive(lambda: echo.Echo(echo_pb2.EchoRequest(message="ping")), args.duration, args.concurrency)
            got = await drive(
                lambda: rank.RankForYou(pb.RankForYouRequest(user_id=viewers[next(turn) % VIEWERS])),
                args.duration,
                args.concurrency,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    return base, got


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench-floor-{uuid.uuid4().hex[:8]}"
    viewers = await store_viewers(args.redis_url, prefix)
    ratios: dict[str, list[float]] = {m: [] for m in MODES}
    qps: dict[str, list[float]] = {m: [] for m in MODES}
    echo_qps: list[float] = []
    for _ in range(args.rounds):
        for mode in MODES:
            base, got = await measure(mode, viewers, args, prefix)
            echo_qps.append(base)
            qps[mode].append(got)
            ratios[mode].append(got / base)
    print(f"{args.concurrency} callers, median of {args.rounds} rounds of {args.duration:.0f} s")
    print(f"{'RankForYou doing':<34} {'calls/s':>8} {'vs echo':>8}")
    print(f"{'echo (baseline)':<34} {statistics.median(echo_qps):8.0f} {1:7.2f}x")
    labels = {
        "fixed": "a prebuilt 50-item page",
        "build": "building the 50-item page",
        "features": "features read + building the page",
    }
    for mode in MODES:
        print(f"{labels[mode]:<34} {statistics.median(qps[mode]):8.0f} {statistics.median(ratios[mode]):7.2f}x")
    redis = Redis.from_url(args.redis_url)
    keys = [k async for k in redis.scan_iter(f"{prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])
    await redis.aclose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--redis-url", default=os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    asyncio.run(main(parser.parse_args()))
