"""Small helpers for the child processes of the embedded runtime."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on ``port`` (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def executable(path: Path) -> Path:
    """``path``, made executable if a wheel dropped the mode bits."""
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def serve_command(name: str) -> list[str]:
    """What runs one service process: ``creatormesh serve NAME`` with this interpreter."""
    return [sys.executable, "-m", "creatormesh.common", "serve", name]


def service_env(
    grpc_port: int, metrics_port: int = 0, extra: Mapping[str, str] | None = None, **settings: str
) -> dict[str, str]:
    """The environment of a local service process: this one's, then ``extra``, then each
    keyword as ``CREATORMESH_<KEY>``, and the service's ports on 127.0.0.1 last."""
    return {
        **os.environ,
        **(extra or {}),
        **{f"CREATORMESH_{key.upper()}": value for key, value in settings.items()},
        "CREATORMESH_GRPC_HOST": "127.0.0.1",
        "CREATORMESH_GRPC_PORT": str(grpc_port),
        "CREATORMESH_METRICS_PORT": str(metrics_port),
    }


def spawn_service(
    name: str, extra: Mapping[str, str] | None = None, *, log_level: str = "WARNING", metrics_port: int = 0
) -> tuple[subprocess.Popen[bytes], str]:
    """``creatormesh serve NAME`` as a quiet child process on a free port (metrics on ``metrics_port``, 0 = none);
    returns it and its gRPC target."""
    port = free_port()
    env = service_env(port, metrics_port, extra, log_level=log_level)
    proc = subprocess.Popen(serve_command(name), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"127.0.0.1:{port}"
