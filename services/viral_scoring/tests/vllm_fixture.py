"""Session fixture: a real vLLM (CPU build) OpenAI-compatible server running a tiny local LM.

The first run on a machine builds the vLLM venv in the user cache (vllm_runtime.DEFAULT_VENV; ~3.5 GB, minutes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from creatormesh.common.runtime.processes import free_port
from creatormesh.viral_scoring.lm_training import WeightedSample, weighted_finetune
from creatormesh.viral_scoring.tiny_lm import build_tiny_lm, synthetic_titles
from creatormesh.viral_scoring.vllm_runtime import DEFAULT_VENV, ensure_vllm_venv, start_vllm, stop_vllm, wait_ready

READY_TIMEOUT = 600.0  # 35-60 s on an idle machine; much more when the 2 cores are shared


@dataclass(frozen=True)
class VllmServer:
    """A running server: ``base_url`` like ``http://127.0.0.1:PORT/v1``."""

    base_url: str
    model_name: str
    model_dir: Path


def tiny_served_model(root: Path) -> Path:
    """A tiny LM briefly trained on synthetic titles, so its samples are mostly whole words, not stray bytes."""
    corpus = synthetic_titles(300, seed=11)
    base = build_tiny_lm(root / "base", corpus, seed=0)
    samples = [WeightedSample(text, 0.0, 1.0) for text in corpus]
    return weighted_finetune(base, samples, root / "served", epochs=3, lr=2e-3, batch_size=16, progress=False).out_dir


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("vllm")
    model_dir = tiny_served_model(root)
    python = ensure_vllm_venv(DEFAULT_VENV)
    port = free_port()
    log_path = root / "vllm.log"
    proc = start_vllm(model_dir, port=port, python=python, served_name="tiny", log_path=log_path)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base_url, timeout=READY_TIMEOUT, proc=proc, log_path=log_path)
        yield VllmServer(base_url=base_url, model_name="tiny", model_dir=model_dir)
    finally:
        stop_vllm(proc)
