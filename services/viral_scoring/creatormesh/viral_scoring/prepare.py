"""Before `creatormesh up`/`demo` start the service: make sure a usable checkpoint exists at the configured model
path, training one on the shipped YouTube-trending data if none does or if it was trained on features of another
shape (once; later runs reuse it)."""

from __future__ import annotations

from pathlib import Path

from creatormesh.common.settings import load
from creatormesh.viral_scoring.settings import ViralScoringSettings


def ensure_model(path: str | Path | None = None) -> Path:
    from creatormesh.viral_scoring.checkpoint import mismatch

    model_dir = Path(path) if path is not None else Path(load(ViralScoringSettings).model_path)
    problem = mismatch(model_dir)
    if not problem:
        return model_dir
    from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR
    from creatormesh.viral_scoring.train import train

    print(f"viral_scoring: {problem}; training on {DEFAULT_DATA_DIR.name} (once)", flush=True)
    meta = train(DEFAULT_DATA_DIR, model_dir)
    print(f"viral_scoring: trained {meta['version']} in {meta['seconds']:.0f} s → {model_dir}", flush=True)
    return model_dir
