"""Allocation RPC throughput against the foundation's echo baseline, same run.

Starts `creatormesh serve echo` and `creatormesh serve allocation` (each its own
process), drives each with CONCURRENCY calls in flight through the kit's client,
alternating rounds, and prints medians and the ratio to echo: RecommendShare
(one creator, the seed's example) and AllocatePool (100 creators, a new
request_id per call, so every call scores, splits and writes the ledger).

    .venv/bin/python benchmarks/allocation_rpc.py [--duration 4] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from creatormesh.allocation.population import simulate
from creatormesh.allocation.signals import SEED_EXAMPLE
from creatormesh.allocation.v1 import allocation_pb2 as pb
from creatormesh.allocation.v1 import allocation_pb2_grpc
from creatormesh.common import client
from creatormesh.common.echo import ECHO_SERVICE
from creatormesh.common.health import wait_serving
from creatormesh.common.runtime.processes import spawn_service, stop_process
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc

ALLOCATION = pb.DESCRIPTOR.services_by_name["AllocationService"]


async def drive(call: Callable[[], Awaitable[Any]], duration: float, concurrency: int) -> tuple[float, float]:
    """(calls per second, p99 latency in ms) with ``concurrency`` calls in flight."""
    latencies: list[float] = []
    end = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return len(latencies) / (time.perf_counter() - started), latencies[int(len(latencies) * 0.99)] * 1e3


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        echo_proc, echo_target = spawn_service("echo")
        alloc_proc, alloc_target = spawn_service(
            "allocation", {"CREATORMESH_ALLOCATION_DATABASE_URL": f"sqlite:///{tmp}/b.db"}
        )
        try:
            await wait_serving(echo_target, proc=echo_proc)
            await wait_serving(alloc_target, proc=alloc_proc)
            echo = echo_pb2_grpc.EchoServiceStub(client.channel(echo_target, ECHO_SERVICE))
            alloc = allocation_pb2_grpc.AllocationServiceStub(client.channel(alloc_target, ALLOCATION, deadline=60))
            share = pb.RecommendShareRequest(creator_id="c1", signals=pb.CreatorSignals(**SEED_EXAMPLE))
            members = [
                pb.PoolMember(creator_id=c, signals=pb.CreatorSignals(**s.as_dict())) for c, s in simulate(100, 5)
            ]
            ids = itertools.count()
            calls: dict[str, Callable[[], Awaitable[Any]]] = {
                "echo (baseline)": lambda: echo.Echo(echo_pb2.EchoRequest(message="ping")),
                "RecommendShare": lambda: alloc.RecommendShare(share),
                "AllocatePool x100": lambda: alloc.AllocatePool(
                    pb.AllocatePoolRequest(request_id=f"bench-{next(ids)}", budget_cents=10**8, members=members)
                ),
            }
            results: dict[str, list[tuple[float, float]]] = {k: [] for k in calls}
            for rnd in range(args.rounds):
                for name, call in calls.items():
                    results[name].append(await drive(call, args.duration, args.concurrency))
                    qps, p99 = results[name][-1]
                    print(f"round {rnd + 1}: {name:<18} {qps:8.0f}/s  p99 {p99:7.1f} ms")
            base = statistics.median(q for q, _ in results["echo (baseline)"])
            print(f"\nmedian of {args.rounds} rounds, {args.concurrency} in flight, {args.duration:.0f} s each")
            print(f"{'call':<18} {'calls/s':>8} {'p99 ms':>8} {'vs echo':>8}")
            for name, rs in results.items():
                qps = statistics.median(q for q, _ in rs)
                p99 = statistics.median(p for _, p in rs)
                print(f"{name:<18} {qps:8.0f} {p99:8.1f} {qps / base:7.2f}x")
            await client.close_all()
        finally:
            for proc in (echo_proc, alloc_proc):
                stop_process(proc, 60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
