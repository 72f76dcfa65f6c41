"""Before `creatormesh up`/`demo` start the service: a single machine has no real text-to-video weights, so a tiny
random Wan pipeline is built at the configured model directory when none is there (once; later runs reuse it).
The service then loads it exactly as it would load Wan2.1."""

from __future__ import annotations

from pathlib import Path

from creatormesh.common.settings import load

from .settings import VideoDiffusionSettings


def ensure_model(path: str | Path | None = None) -> Path:
    model_dir = Path(path) if path is not None else Path(load(VideoDiffusionSettings).model_dir)
    if (model_dir / "model_index.json").is_file():
        return model_dir
    from .builder import build_tiny

    print(f"video_diffusion: no model at {model_dir}; building a tiny random Wan pipeline (once)", flush=True)
    return build_tiny(model_dir)
