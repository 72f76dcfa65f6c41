"""Before `creatormesh up`/`demo` start the service: a single machine has no real text-to-video weights, so a tiny
random Wan pipeline is built at the configured model directory when none is there (once; later runs reuse it).
The service then loads it exactly as it would load Wan2.1. Likewise, when no CLIP model is configured, a tiny random
CLIP is built beside it and configured for the services this process starts (their environment is this one's), so
the CLIP score goes through the same code as with a real CLIP."""

from __future__ import annotations

import os
from pathlib import Path

from creatormesh.common.settings import load

from .settings import VideoDiffusionSettings

CLIP_VARIABLE = "CREATORMESH_VIDEO_DIFFUSION_CLIP_MODEL_DIR"


def ensure_model(path: str | Path | None = None) -> Path:
    model_dir = Path(path) if path is not None else Path(load(VideoDiffusionSettings).model_dir)
    if not os.environ.get(CLIP_VARIABLE):
        os.environ[CLIP_VARIABLE] = str(ensure_clip(model_dir.parent / "tiny-clip"))
    if (model_dir / "model_index.json").is_file():
        return model_dir
    from .builder import build_tiny

    print(f"video_diffusion: no model at {model_dir}; building a tiny random Wan pipeline (once)", flush=True)
    return build_tiny(model_dir)


def ensure_clip(clip_dir: Path) -> Path:
    if (clip_dir / "config.json").is_file():
        return clip_dir
    from .quality import build_tiny_clip

    print(f"video_diffusion: no CLIP model configured; building a tiny random CLIP at {clip_dir} (once)", flush=True)
    return build_tiny_clip(clip_dir)
