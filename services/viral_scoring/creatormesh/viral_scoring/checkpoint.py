"""Checkpoint directory: full.safetensors, light.safetensors and metadata.json (config, version, metrics)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from creatormesh.viral_scoring.model import LightModel, ModelConfig, ViralModel

FULL = "full.safetensors"
LIGHT = "light.safetensors"
METADATA = "metadata.json"


@dataclass
class Checkpoint:
    full: ViralModel
    light: LightModel
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def weights_version(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def save(out_dir: Path, full: ViralModel, light: LightModel, metadata: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(out_dir / FULL))
    save_file({k: v.contiguous() for k, v in light.state_dict().items()}, str(out_dir / LIGHT))
    meta = {**metadata, "config": full.config.to_dict()}
    tmp = out_dir / f"{METADATA}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, out_dir / METADATA)  # metadata last: a directory with metadata is complete
    return out_dir


def feature_dims() -> dict[str, int]:
    """The input widths today's feature code produces (a checkpoint must have been trained on the same)."""
    from creatormesh.viral_scoring.features import (
        AUDIO_DIM,
        BEHAVIOUR_NAMES,
        EMBEDDING_DIM,
        STAT_NAMES,
        TEMPORAL_NAMES,
        VISUAL_DIM,
    )

    return {
        "embedding_dim": EMBEDDING_DIM,
        "stats_dim": len(STAT_NAMES),
        "visual_dim": VISUAL_DIM,
        "audio_dim": AUDIO_DIM,
        "behavioural_dim": len(BEHAVIOUR_NAMES),
        "temporal_dim": len(TEMPORAL_NAMES),
    }


def mismatch(model_dir: Path) -> str:
    """Why the checkpoint in ``model_dir`` can't be used with today's features ("" when it can)."""
    meta_path = model_dir / METADATA
    if not meta_path.is_file():
        return f"no viral_scoring checkpoint in {model_dir} (run `creatormesh viral_scoring train`)"
    config = json.loads(meta_path.read_text()).get("config", {})
    wrong = [f"{k} {config.get(k)} != {v}" for k, v in feature_dims().items() if config.get(k) != v]
    return f"{model_dir} was trained on other features ({', '.join(wrong)}): retrain it" if wrong else ""


def load(model_dir: Path) -> Checkpoint:
    """FileNotFoundError when the directory is not a complete checkpoint; ValueError when it was trained on
    features of another shape."""
    problem = mismatch(model_dir)
    if problem.startswith("no viral_scoring checkpoint"):
        raise FileNotFoundError(problem)
    if problem:
        raise ValueError(problem)
    metadata = json.loads((model_dir / METADATA).read_text())
    config = ModelConfig(**metadata["config"])
    full, light = ViralModel(config), LightModel(config)
    full.load_state_dict(load_file(str(model_dir / FULL)))
    light.load_state_dict(load_file(str(model_dir / LIGHT)))
    return Checkpoint(full.eval(), light.eval(), metadata)
