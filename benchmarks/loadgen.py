"""Load loops shared by the RPC benchmarks: one caller's latency percentiles and many callers' throughput."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

Call = Callable[[], Awaitable[Any]]


async def one_caller(call: Call, calls: int) -> tuple[float, float]:
    """(p50, p99) in milliseconds of ``calls`` sequential calls, after one warm-up call."""
    await call()
    latencies = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    return latencies[len(latencies) // 2] * 1e3, latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3


async def drive(call: Call, duration: float, concurrency: int) -> float:
    """Calls per second with ``concurrency`` callers looping for ``duration`` seconds."""
    done = 0
    end = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await call()
            done += 1

    await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def serve_until_sigterm(server: grpc.aio.Server, port: int) -> None:
    """Listen on 127.0.0.1:``port`` until SIGTERM, then stop: the bare servers benchmarks run as child processes."""
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive_costed(call: Call, duration: float, concurrency: int, pids: list[int]) -> tuple[float, float, float]:
    """``drive``, plus the CPU seconds per call of this client and of the processes ``pids`` (summed)."""
    used, t0 = (own_cpu(), sum(map(process_cpu, pids))), time.perf_counter()
    rate = await drive(call, duration, concurrency)
    calls = rate * (time.perf_counter() - t0)
    return rate, (own_cpu() - used[0]) / calls, (sum(map(process_cpu, pids)) - used[1]) / calls
