"""`creatormesh up`: the whole mesh on one machine.

Starts (or finds) Redis, starts the embedded broker and creates the topics,
starts every installed service as its own ``creatormesh serve <name>`` process
with its own ports, streams their logs with a name prefix, waits until each
reports SERVING, writes ``.creatormesh/runtime.json`` for ``creatormesh status``,
and on shutdown stops services first (SIGTERM, graceful drain), then the broker
and the private Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from creatormesh.common import redis_pool
from creatormesh.common.health import check
from creatormesh.common.plugins import ServicePlugin, resolve
from creatormesh.common.runtime.broker import EmbeddedBroker
from creatormesh.common.runtime.processes import free_port, serve_command, service_env
from creatormesh.common.runtime.redis_server import EmbeddedRedis

log = logging.getLogger("creatormesh.mesh")
STATE_DIR = Path(".creatormesh")
COLORS = ["36", "35", "33", "32", "34", "31"]


@dataclass
class ServiceState:
    name: str
    grpc_port: int
    metrics_port: int
    pid: int = 0
    status: str = "STARTING"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@dataclass
class MeshState:
    kafka_bootstrap: str = ""
    redis_url: str = ""
    redis_embedded: bool = False
    services: dict[str, ServiceState] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> MeshState:
        data = json.loads(path.read_text())
        services = {k: ServiceState(**v) for k, v in data.pop("services").items()}
        return cls(services=services, **data)


class Mesh:
    """The embedded runtime and the service processes; use ``async with Mesh(...)``."""

    def __init__(
        self,
        plugins: list[ServicePlugin],
        state_dir: Path = STATE_DIR,
        redis_url: str | None = None,
        log_format: str = "text",
        echo_logs: bool = True,
        ready_timeout: float = 600.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.plugins = plugins
        self.state_dir = state_dir
        self.redis_url = redis_url or os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0")
        self.log_format = log_format
        self.echo_logs = echo_logs
        self.ready_timeout = ready_timeout
        self.extra_env = extra_env or {}
        self.state = MeshState()
        self.broker: EmbeddedBroker | None = None
        self.redis: EmbeddedRedis | None = None
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._logs: list[IO[bytes]] = []

    @property
    def state_file(self) -> Path:
        return self.state_dir / "runtime.json"

    def _logfile(self, name: str) -> IO[bytes]:
        path = self.state_dir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
        self._logs.append(handle)
        return handle

    async def __aenter__(self) -> Mesh:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self) -> MeshState:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if await redis_pool.ping(self.redis_url):
            self.state.redis_url = self.redis_url
            say(f"redis     using {self.redis_url}")
        else:
            self.redis = EmbeddedRedis(self._logfile("redis"))
            self.state.redis_url = await asyncio.to_thread(self.redis.start)
            self.state.redis_embedded = True
            say(f"redis     none answered at {self.redis_url}: started a private one at {self.state.redis_url}")
        for plugin in self.plugins:
            if plugin.prepare:
                say(f"prepare   {plugin.name}")
                await asyncio.to_thread(resolve(plugin.prepare))
        self.broker = EmbeddedBroker(self._logfile("broker"))
        self.state.kafka_bootstrap = await asyncio.to_thread(self.broker.start)
        say(f"kafka     embedded broker at {self.state.kafka_bootstrap}, topics created")
        for plugin in self.plugins:
            await self._spawn(plugin)
        self.state.save(self.state_file)
        await asyncio.gather(*(self._wait_serving(p.name) for p in self.plugins))
        self.state.save(self.state_file)
        return self.state

    def env_for(self, service: ServiceState) -> dict[str, str]:
        env = service_env(
            service.grpc_port,
            service.metrics_port,
            self.extra_env,
            kafka_bootstrap=self.state.kafka_bootstrap,
            redis_url=self.state.redis_url,
            log_format=self.log_format,
        )
        return {**env, "PYTHONUNBUFFERED": "1"}

    async def _spawn(self, plugin: ServicePlugin) -> None:
        service = ServiceState(plugin.name, free_port(), free_port())
        proc = await asyncio.create_subprocess_exec(
            *serve_command(plugin.name),
            env=self.env_for(service),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        service.pid = proc.pid
        self.procs[plugin.name] = proc
        self.state.services[plugin.name] = service
        color = COLORS[len(self.procs) % len(COLORS)]
        self._pumps.append(asyncio.create_task(self._pump(plugin.name, proc, color)))
        say(f"service   {plugin.name}: pid {proc.pid}, gRPC :{service.grpc_port}, metrics :{service.metrics_port}")

    async def _pump(self, name: str, proc: asyncio.subprocess.Process, color: str) -> None:
        assert proc.stdout is not None
        sink = self._logfile(name)
        prefix = f"\x1b[{color}m{name:>16} │\x1b[0m " if sys.stdout.isatty() else f"{name:>16} | "
        async for line in proc.stdout:
            sink.write(line)
            sink.flush()
            if self.echo_logs:
                sys.stdout.write(prefix + line.decode(errors="replace"))
                sys.stdout.flush()

    async def _wait_serving(self, name: str) -> None:
        service = self.state.services[name]
        proc = self.procs[name]
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                service.status = "EXITED"
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {self.state_dir}/logs/{name}.log")
            status = await check(service.target, timeout=1.0)
            if status == "SERVING":
                service.status = status
                say(f"ready     {name} SERVING on {service.target}")
                return
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{name} not SERVING after {self.ready_timeout:.0f}s")

    async def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                code = await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                code = await proc.wait()
            say(f"stopped   {name} (exit code {code})")
        self.procs.clear()
        for pump in self._pumps:
            pump.cancel()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
            self.broker = None
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
            self.redis = None
        for handle in self._logs:
            handle.close()
        self._logs.clear()
        self.state_file.unlink(missing_ok=True)


def say(message: str) -> None:
    """Progress for people, on stdout (services' logs are interleaved there too)."""
    sys.stdout.write(f"\x1b[1m[mesh]\x1b[0m {message}\n" if sys.stdout.isatty() else f"[mesh] {message}\n")
    sys.stdout.flush()
