"""The embedded runtime: broker, private Redis, a service process, `creatormesh status`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from creatormesh.common import redis_pool
from creatormesh.common.health import check
from creatormesh.common.plugins import discover, mesh_services
from creatormesh.common.runtime.mesh import Mesh

pytestmark = pytest.mark.integration


def test_echo_is_a_diagnostic_plugin_not_started_by_up() -> None:
    assert "echo" in discover()
    assert "echo" not in [p.name for p in mesh_services()]


PREPARED: list[str] = []


def mark_prepared() -> None:
    PREPARED.append("echo")


async def test_mesh_starts_everything_and_status_reports_it(tmp_path: Path) -> None:
    state_dir = tmp_path / ".creatormesh"
    echo = dataclasses.replace(discover()["echo"], prepare=f"{__name__}:mark_prepared")
    mesh = Mesh([echo], state_dir=state_dir, redis_url="redis://127.0.0.1:1/0", echo_logs=False)
    async with mesh:
        assert PREPARED == ["echo"]  # the plugin's prepare hook ran before its process started
        assert mesh.state.redis_embedded and await redis_pool.ping(mesh.state.redis_url)
        assert await check(mesh.state.services["echo"].target) == "SERVING"
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "creatormesh.common", "status", "--json"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["health"] == {"echo": "SERVING"}
        assert report["kafka"] == mesh.state.kafka_bootstrap
        pid = mesh.state.services["echo"].pid
        url = mesh.state.redis_url
    assert not (state_dir / "runtime.json").exists()
    assert (state_dir / "logs" / "echo.log").read_text().count("SERVING") >= 1
    assert not await redis_pool.ping(url)
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
