"""Before `creatormesh up`/`demo` start the service: make sure a checkpoint exists at the configured
model path, training one on the shipped MovieLens data if none does (once; later runs reuse it)."""

from __future__ import annotations

import logging
from pathlib import Path

from creatormesh.common.settings import load
from creatormesh.ranking.settings import RankingSettings

log = logging.getLogger("creatormesh.ranking.prepare")


def ensure_model(path: str | Path | None = None) -> Path:
    model_dir = Path(path) if path is not None else Path(load(RankingSettings).model_path)
    if (model_dir / "metadata.json").is_file():
        return model_dir
    from creatormesh.ranking.data import DEFAULT_DATA_DIR
    from creatormesh.ranking.train import train

    print(f"ranking: no checkpoint at {model_dir}; training on {DEFAULT_DATA_DIR.name} (once)", flush=True)
    result = train(DEFAULT_DATA_DIR, model_dir)
    print(f"ranking: trained {result.version} in {result.seconds:.0f} s → {model_dir}", flush=True)
    return model_dir
