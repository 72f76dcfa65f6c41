"""RankForYou latency and throughput with >= 100k items in the index, against the foundation's
echo baseline measured in the same run.

Stores ITEMS synthetic live items (clustered unit vectors of the trained model's dimension, random
genres and quality) in Redis the way the `content.scored` consumer does, starts `creatormesh serve
echo` and `creatormesh serve ranking` (each its own process; ranking loads the items into its
HNSW index at start), records VIEWERS warm viewers' histories (30 random trained items each) and
VIEWERS cold viewers' interests (two random genres) in the feature store, then measures:

- one caller: p50/p99 of RankForYou (top-50, retrieval from the index), warm and cold viewers;
- CONCURRENCY callers: calls/s of RankForYou against calls/s of echo (median of rounds), on one replica
  and spread round-robin over REPLICAS replicas (each its own process, as pods would be), plus how many
  calls one replica ranked per batch, and the CPU time per call of this client and of the server(s) (from
  /proc: what a serving path may spend per call for a goal on a box of a given size).

Every call asks for the next viewer in turn, so no two calls in a row share a user's cached model
state: what is measured is ranking many different users, not one user's page again and again.

    .venv/bin/python benchmarks/ranking_rpc.py [--items 100000] [--calls 300] [--duration 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from loadgen import drive_costed, one_caller
from redis.asyncio import Redis

from creatormesh.common import client
from creatormesh.common.echo import ECHO_SERVICE
from creatormesh.common.health import wait_serving
from creatormesh.common.runtime.processes import free_port, service_env, spawn_service, stop_process
from creatormesh.ranking import compiled
from creatormesh.ranking.catalog import ItemMeta
from creatormesh.ranking.features import FeatureStore, InteractionRecord
from creatormesh.ranking.live_items import LiveItems
from creatormesh.ranking.prepare import ensure_model
from creatormesh.ranking.recommender import ItemContent, Recommender
from creatormesh.ranking.v1 import ranking_pb2 as pb
from creatormesh.ranking.v1 import ranking_pb2_grpc
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc

RANKING = pb.DESCRIPTOR.services_by_name["RankingService"]
GENRES = ["comedy", "drama", "action", "sci-fi", "horror", "romance", "gaming", "music", "sports", "food"]


async def store_items(redis: Any, prefix: str, rec: Recommender, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, rec.dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, n)] + 0.35 * rng.normal(size=(n, rec.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    live = LiveItems(redis, prefix=prefix)
    ids = [f"bench-{i}" for i in range(n)]
    now = time.time()
    for start_at in range(0, n, 2000):
        batch = [
            (
                ItemMeta(
                    ItemContent(ids[i], genres=(GENRES[i % len(GENRES)],), quality=float(rng.uniform(0.2, 1.0))),
                    creator_id=f"creator-{i % 5000}",
                    published_at=now - float(rng.uniform(0, 7 * 86400)),
                ),
                vectors[i],
            )
            for i in range(start_at, min(n, start_at + 2000))
        ]
        await live.put_many(batch, rec.version)
    return ids


async def store_viewers(features: FeatureStore, rec: Recommender, n: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """``n`` warm viewers (30 distinct random trained items each) and ``n`` cold ones (two random genres)."""
    rng = np.random.default_rng(seed)
    trained = [c.item_id for c in rec.catalog()]
    run = uuid.uuid4().hex[:6]
    warm, cold = [f"bench-warm-{run}-{v}" for v in range(n)], [f"bench-cold-{run}-{v}" for v in range(n)]
    now = time.time()
    for v, viewer in enumerate(warm):
        history = rng.choice(len(trained), size=30, replace=False)
        await asyncio.gather(*(
            features.record(f"{viewer}-{i}", InteractionRecord(viewer, trained[j], "complete", now - 60 * (30 - i)))
            for i, j in enumerate(history.tolist())
        ))  # fmt: skip
        await features.set_interests(cold[v], [str(g) for g in rng.choice(GENRES, size=2, replace=False)])
    return warm, cold


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """(calls, batches) the ranking replica has served through its batcher so far, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("creatormesh_batch_size_") and 'batcher="rank_for_you"' in line:
            name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
            values[name] = value
    return values.get("creatormesh_batch_size_sum", 0.0), values.get("creatormesh_batch_size_count", 0.0)


async def main(args: argparse.Namespace) -> None:
    model_dir: Path = args.model_dir
    await asyncio.to_thread(ensure_model, model_dir)
    rec = await asyncio.to_thread(Recommender.load, model_dir)
    prefix = f"bench-ranking-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(args.redis_url)
    t0 = time.perf_counter()
    ids = await store_items(redis, prefix, rec, args.items)
    print(f"stored {len(ids)} synthetic items in Redis in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    warm_viewers, cold_viewers = await store_viewers(FeatureStore(redis, prefix=prefix), rec, args.viewers)
    print(f"recorded {args.viewers} warm and {args.viewers} cold viewers in {time.perf_counter() - t0:.1f} s")
    env = {
        "CREATORMESH_REDIS_URL": args.redis_url, "CREATORMESH_RANKING_MODEL_PATH": str(model_dir),
        "CREATORMESH_RANKING_REDIS_PREFIX": prefix,
    }  # fmt: skip
    echo_proc, echo_target = spawn_service("echo", env)
    metrics_port = free_port()
    replicas = [spawn_service("ranking", env, metrics_port=metrics_port if i == 0 else 0) for i in range(args.replicas)]
    native: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.perf_counter()
        await wait_serving(echo_target, proc=echo_proc)
        for proc, target in replicas:
            await wait_serving(target, 900, proc=proc)
        print(
            f"{args.replicas} ranking replica(s) SERVING after {time.perf_counter() - t0:.1f} s "
            f"(each loads and indexes {args.items} items)"
        )
        native_target = ""
        if args.compiled and not compiled.missing():
            native, native_target = await asyncio.to_thread(start_compiled, env, replicas[0][1])
            t0 = time.perf_counter()
            await wait_serving(native_target, 900, proc=native)
            print(f"compiled server SERVING after {time.perf_counter() - t0:.1f} s")
        elif args.compiled:
            print(f"compiled server not measured: {', '.join(compiled.missing())} missing (make cpp-toolchain)")
        echo = echo_pb2_grpc.EchoServiceStub(client.channel(echo_target, ECHO_SERVICE))
        stub = ranking_pb2_grpc.RankingServiceStub(client.channel(replicas[0][1], RANKING, deadline=30))
        every = "ipv4:" + ",".join(target for _, target in replicas)
        spread = ranking_pb2_grpc.RankingServiceStub(client.channel(every, RANKING, deadline=30, round_robin=True))
        overdrive = (("x-use-overdrive", "1"),)
        warm = itertools.cycle([pb.RankForYouRequest(user_id=u, limit=50) for u in warm_viewers])
        cold = itertools.cycle([pb.RankForYouRequest(user_id=u, limit=50) for u in cold_viewers])
        page = await stub.RankForYou(next(warm), metadata=overdrive)
        assert page.candidates_considered > 0 and len(page.items) == 50, page
        assert page.user_state == pb.USER_STATE_WARM, page.user_state
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "echo (baseline)": lambda: echo.Echo(echo_pb2.EchoRequest(message="ping")),
            "RankForYou warm": lambda: stub.RankForYou(next(warm), metadata=overdrive),
            "RankForYou cold": lambda: stub.RankForYou(next(cold), metadata=overdrive),
        }
        if native_target:
            fast = ranking_pb2_grpc.RankingServiceStub(client.channel(native_target, RANKING, deadline=30))
            calls["compiled warm"] = lambda: fast.RankForYou(next(warm), metadata=overdrive)
            calls["compiled cold"] = lambda: fast.RankForYou(next(cold), metadata=overdrive)
        print(f"\none caller, {args.calls} calls, top-50 of {args.items + len(rec.catalog())} items")
        print(f"{'call':<18} {'p50 ms':>8} {'p99 ms':>8}")
        for name, call in calls.items():
            p50, p99 = await one_caller(call, args.calls)
            print(f"{name:<18} {p50:8.2f} {p99:8.2f}")
        if args.replicas > 1:
            calls[f"warm, {args.replicas} replicas"] = lambda: spread.RankForYou(next(warm), metadata=overdrive)
            calls[f"cold, {args.replicas} replicas"] = lambda: spread.RankForYou(next(cold), metadata=overdrive)
        results: dict[str, list[float]] = {k: [] for k in calls}
        cpu: dict[str, list[tuple[float, float]]] = {k: [] for k in calls}  # (client, servers) CPU s per call
        batched = [0.0, 0.0]  # calls and batches of replica 0 while 32 callers drive it alone
        for _ in range(args.rounds):
            for name, call in calls.items():
                if name.startswith("echo"):
                    servers = [echo_proc.pid]
                elif name.startswith("compiled") and native is not None:
                    servers = [native.pid]
                else:
                    servers = [p.pid for p, _ in (replicas if "replicas" in name else replicas[:1])]
                before = batch_totals(metrics_port)
                rate, client_s, server_s = await drive_costed(call, args.duration, args.concurrency, servers)
                results[name].append(rate)
                cpu[name].append((client_s, server_s))
                if name.startswith("RankForYou"):
                    after = batch_totals(metrics_port)
                    batched = [batched[0] + after[0] - before[0], batched[1] + after[1] - before[1]]
        base = statistics.median(results["echo (baseline)"])
        print(f"\n{args.concurrency} callers, median of {args.rounds} rounds of {args.duration:.0f} s")
        print(f"{'call':<22} {'calls/s':>8} {'vs echo':>8} {'client CPU/call':>16} {'server CPU/call':>16}")
        for name, qps in results.items():
            client_s, server_s = (statistics.median(x) * 1e6 for x in zip(*cpu[name], strict=True))
            print(
                f"{name:<22} {statistics.median(qps):8.0f} {statistics.median(qps) / base:7.2f}x "
                f"{client_s:13.0f} µs {server_s:13.0f} µs"
            )
        print(f"calls per ranking batch with {args.concurrency} callers (one replica): {batched[0] / batched[1]:.1f}")
        await client.close_all()
    finally:
        for proc in (echo_proc, *(proc for proc, _ in replicas), *([native] if native else [])):
            stop_process(proc, 60)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()


def start_compiled(env: dict[str, str], backend: str) -> tuple[subprocess.Popen[bytes], str]:
    """``ranking-serving serve`` (built if needed) on a free port, forwarding to ``backend``."""
    binary = compiled.build()
    port = free_port()
    extra = {**env, "CREATORMESH_RANKING_BACKEND": backend}
    proc = subprocess.Popen(
        [str(binary), "serve"], env=service_env(port, 0, extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return proc, f"127.0.0.1:{port}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--replicas", type=int, default=2, help="also measure calls spread over this many replicas")
    parser.add_argument("--no-compiled", dest="compiled", action="store_false", help="skip the compiled server")
    parser.add_argument("--viewers", type=int, default=500, help="warm viewers (and as many cold ones) to call")
    parser.add_argument("--model-dir", type=lambda p: Path(p).absolute(), default=".creatormesh/ranking/model")
    parser.add_argument("--redis-url", default=os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    asyncio.run(main(parser.parse_args()))
