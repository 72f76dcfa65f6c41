"""A private S3-compatible server (`s3rver`, from npm) for tests and demos of the S3 storage path.

Uses the repo's ``node_modules/.bin/s3rver`` when present, else installs the pinned version with npm into a
user cache directory (``$XDG_CACHE_HOME/creatormesh/s3rver``, default ``~/.cache/creatormesh/s3rver``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from creatormesh.common.runtime.processes import free_port, stop_process, wait_for_port

S3RVER_VERSION = "3.7.1"
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def _repo_s3rver() -> Path | None:
    """``node_modules/.bin/s3rver`` under the first ancestor (of this file, then of the cwd) that has one."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            candidate = parent / "node_modules" / ".bin" / "s3rver"
            if (parent / "package.json").is_file() and candidate.exists():
                return candidate
    return None


def cache_dir() -> Path:
    """Where s3rver is installed when the repo has none."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "creatormesh" / "s3rver"


def s3rver_binary(install: bool = True) -> Path:
    """The s3rver command: the repo's, the cached one, or (``install``) a fresh npm install into the cache."""
    found = _repo_s3rver()
    if found is not None:
        return found
    cached = cache_dir() / "node_modules" / ".bin" / "s3rver"
    if cached.exists():
        return cached
    npm = shutil.which("npm")
    if not install or npm is None or shutil.which("node") is None:
        raise RuntimeError("s3rver needs node and npm (none found on PATH), or node_modules/.bin/s3rver")
    cache_dir().mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(cache_dir()), f"s3rver@{S3RVER_VERSION}", "--no-audit", "--no-fund",
         "--no-save", "--loglevel=error"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 or not cached.exists():
        raise RuntimeError(f"npm install s3rver@{S3RVER_VERSION} failed: {done.stderr.strip()[-2000:]}")
    return cached


def node_available() -> bool:
    """True when s3rver can run here: the repo has it, or node and npm exist."""
    return _repo_s3rver() is not None or (shutil.which("node") is not None and shutil.which("npm") is not None)


class EmbeddedS3:
    """An s3rver on a free port with its data in a temp directory; ``start()`` returns the endpoint URL.
    Credentials are s3rver's defaults, ``ACCESS_KEY`` / ``SECRET_KEY``."""

    def __init__(self, log: IO[bytes] | None = None) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self._data: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 30.0) -> str:
        binary = s3rver_binary()
        self._data = tempfile.TemporaryDirectory(prefix="s3rver-")
        port = free_port()
        self.proc = subprocess.Popen(
            [str(binary), "--directory", self._data.name, "--port", str(port), "--address", "127.0.0.1", "--silent"],
            stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_port(port, timeout, self.proc)
            self.endpoint = f"http://127.0.0.1:{port}"
            _wait_answers(self.endpoint, timeout)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None
        if self._data is not None:
            self._data.cleanup()
            self._data = None


def _wait_answers(endpoint: str, timeout: float) -> None:
    """Wait until s3rver answers HTTP (any status: an unsigned request gets 403)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"s3rver at {endpoint} did not answer after {timeout:.0f}s") from None
            time.sleep(0.05)
