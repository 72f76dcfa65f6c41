"""What a RankForYou call may cost for the ranking goal "32 callers, >= 50 % of echo's calls/s", measured on
this machine: echo on the kit's Python server (the foundation's baseline) and on gRPC's C++ server, driven by
the same Python client with CONCURRENCY callers, with the CPU time per call of the client and of the server
(from /proc). The budget is the CPU per call a server may spend at half of echo's rate, after the client's
share of the cores:

    budget = (cores - 0.5 * echo_rate * client_cpu_per_call) / (0.5 * echo_rate)

and what is left of it for ranking work once the server's own per-call gRPC cost is paid.

Needs a C++ toolchain with gRPC (Debian 12: ``make cpp-toolchain``); the server is built into
.creatormesh/build/serving-budget from benchmarks/cpp/echo_server.cc.

    .venv/bin/python benchmarks/serving_budget.py [--duration 4] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from loadgen import drive, drive_costed

from creatormesh.common import client
from creatormesh.common.echo import ECHO_SERVICE
from creatormesh.common.health import wait_serving
from creatormesh.common.runtime.processes import free_port, spawn_service, stop_process
from creatormesh.testing.v1 import echo_pb2, echo_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "benchmarks" / "cpp" / "echo_server.cc"
PROTO = "creatormesh/testing/v1/echo.proto"
TOOLS = ("g++", "pkg-config", "protoc", "grpc_cpp_plugin")


def build(out: Path) -> Path:
    """Compile the C++ echo server (again only when its source or the proto changed)."""
    binary = out / "echo_server"
    inputs = [SOURCE, ROOT / "protos" / PROTO]
    if binary.exists() and all(binary.stat().st_mtime > p.stat().st_mtime for p in inputs):
        return binary
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or subprocess.run(["pkg-config", "--exists", "grpc++"], check=False).returncode:
        sys.exit(f"serving_budget: needs {', '.join(missing) or 'grpc++ (pkg-config)'}: run `make cpp-toolchain`")
    gen = out / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    plugin = f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}"
    subprocess.run(
        ["protoc", f"-I{ROOT / 'protos'}", f"--cpp_out={gen}", f"--grpc_out={gen}", plugin, PROTO], check=True
    )
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], check=True, capture_output=True, text=True
    ).stdout.split()
    stem = gen / PROTO.removesuffix(".proto")
    sources = [str(SOURCE), f"{stem}.pb.cc", f"{stem}.grpc.pb.cc"]
    print(f"building {binary.relative_to(ROOT)} ...", flush=True)
    subprocess.run(["g++", "-O2", "-std=c++17", f"-I{gen}", *sources, *flags, "-o", str(binary)], check=True)
    return binary


async def measure(target: str, pid: int, args: argparse.Namespace) -> tuple[float, float, float]:
    """(calls/s, client CPU s per call, server CPU s per call) of one round."""
    stub = echo_pb2_grpc.EchoServiceStub(client.channel(target, ECHO_SERVICE))

    async def call() -> None:
        await stub.Echo(echo_pb2.EchoRequest(message="ping"))

    await drive(call, 1.0, args.concurrency)  # warm-up
    return await drive_costed(call, args.duration, args.concurrency, [pid])


def start(binary: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(binary), str(port)], stdout=subprocess.DEVNULL)


async def main(args: argparse.Namespace) -> None:
    binary = build(ROOT / ".creatormesh" / "build" / "serving-budget")
    py_proc, py_target = spawn_service("echo", {})
    port = free_port()
    cpp_proc = start(binary, port)
    try:
        await wait_serving(py_target, proc=py_proc)
        cpp_target = f"127.0.0.1:{port}"
        await wait_serving(cpp_target, proc=cpp_proc)
        targets = {"echo, kit (Python)": (py_target, py_proc.pid), "echo, C++ server": (cpp_target, cpp_proc.pid)}
        rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):  # alternate, so machine noise hits both alike
            for name, (target, pid) in targets.items():
                rows[name].append(await measure(target, pid, args))
        await client.close_all()
    finally:
        stop_process(py_proc, 30)
        cpp_proc.terminate()
        cpp_proc.wait(10)
    cores = os.cpu_count() or 1
    print(f"\n{args.concurrency} callers, median of {args.rounds} rounds of {args.duration:.0f} s, {cores} cores")
    print(f"{'server':<20} {'calls/s':>8} {'client CPU/call':>16} {'server CPU/call':>16}")
    med = {name: [statistics.median(x) for x in zip(*r, strict=True)] for name, r in rows.items()}
    for name, (rate, client_s, server_s) in med.items():
        print(f"{name:<20} {rate:8.0f} {client_s * 1e6:13.0f} µs {server_s * 1e6:13.0f} µs")
    echo_rate, client_s, _ = med["echo, kit (Python)"]
    target = 0.5 * echo_rate
    budget = (cores - target * client_s) / target
    print(
        f"\ngoal: {target:.0f} RankForYou calls/s (0.5 x echo); the client needs {target * client_s:.2f} cores for it"
    )
    print(f"CPU a server may spend per call: {budget * 1e6:.0f} µs (over all its threads)")
    for name in med:
        print(f"  left for ranking on the {name.split(', ')[1]}: {(budget - med[name][2]) * 1e6:.0f} µs")
    print(f"  on one thread (a Python server's GIL): at most {1e6 / target:.0f} µs per call in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
