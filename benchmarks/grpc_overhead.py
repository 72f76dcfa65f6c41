"""What the kit costs on a trivial RPC: raw grpc.aio echo vs the kit's server.

Each server runs in its own process; this process drives it with CONCURRENCY
calls in flight for DURATION seconds. Rounds alternate raw / kit so machine
noise hits both alike; the medians and their ratio are printed.

    .venv/bin/python benchmarks/grpc_overhead.py [--duration 4] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import grpc
from loadgen import serve_until_sigterm

from creatormesh.common import client
from creatormesh.common.echo import ECHO_SERVICE, EchoServicer
from creatormesh.common.health import check
from creatormesh.common.runtime.processes import free_port, serve_command, service_env
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc


@dataclass
class Result:
    qps: float
    p50_ms: float
    p99_ms: float


async def serve_raw(port: int) -> None:
    """The baseline: a bare grpc.aio server with the echo servicer, nothing else."""
    server = grpc.aio.server()
    echo_pb2_grpc.add_EchoServiceServicer_to_server(EchoServicer(), server)
    await serve_until_sigterm(server, port)


def start(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-raw", str(port)] if kind == "raw" else serve_command("echo")
    env = service_env(port, free_port(), log_level="WARNING")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), f"127.0.0.1:{port}"


async def wait_ready(target: str, kind: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if kind == "raw":
            try:
                async with grpc.aio.insecure_channel(target) as ch:
                    await echo_pb2_grpc.EchoServiceStub(ch).Echo(echo_pb2.EchoRequest(), timeout=1)
                return
            except grpc.aio.AioRpcError:
                pass
        elif await check(target) == "SERVING":
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(target)


async def load(stub: echo_pb2_grpc.EchoServiceAsyncStub, duration: float, concurrency: int) -> Result:
    request = echo_pb2.EchoRequest(message="ping", payload=b"x" * 64)
    latencies: list[float] = []
    end = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await stub.Echo(request, timeout=10)
            latencies.append(time.perf_counter() - t0)

    await stub.Echo(request, timeout=10)  # warm the connection
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        len(latencies) / elapsed, latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3
    )


async def measure(kind: str, client_kind: str, duration: float, concurrency: int) -> Result:
    proc, target = start(kind)
    try:
        await wait_ready(target, kind)
        if client_kind == "kit":
            stub = echo_pb2_grpc.EchoServiceStub(client.channel(target, ECHO_SERVICE, deadline=10))
            result = await load(stub, duration, concurrency)
            await client.close_all()
        else:
            async with grpc.aio.insecure_channel(target) as channel:
                result = await load(echo_pb2_grpc.EchoServiceStub(channel), duration, concurrency)
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


async def main(args: argparse.Namespace) -> None:
    setups = [("raw server, raw client", "raw", "raw"), ("kit server, raw client", "kit", "raw"),
              ("kit server, kit client", "kit", "kit")]  # fmt: skip
    results: dict[str, list[Result]] = {name: [] for name, _, _ in setups}
    for rnd in range(args.rounds):
        for name, server_kind, client_kind in setups:
            r = await measure(server_kind, client_kind, args.duration, args.concurrency)
            results[name].append(r)
            print(f"round {rnd + 1}: {name:<24} {r.qps:8.0f} QPS  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms")
    base = statistics.median(r.qps for r in results[setups[0][0]])
    print(f"\nmedian of {args.rounds} rounds, {args.concurrency} calls in flight, {args.duration:.0f} s each")
    print(f"{'setup':<24} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'QPS vs raw':>11} {'overhead':>9}")
    for name, rs in results.items():
        qps = statistics.median(r.qps for r in rs)
        p50 = statistics.median(r.p50_ms for r in rs)
        p99 = statistics.median(r.p99_ms for r in rs)
        print(f"{name:<24} {qps:8.0f} {p50:8.2f} {p99:8.2f} {qps / base:10.2f}x {base / qps:8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve-raw", type=int, default=0, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    asyncio.run(serve_raw(ns.serve_raw) if ns.serve_raw else main(ns))
