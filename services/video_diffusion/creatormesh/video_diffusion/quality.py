"""Quality of a generated video: CLIP text-video score, temporal consistency and flicker.

The definitions follow ``QualityMetrics`` in ``protos/creatormesh/video_diffusion/v1/video_diffusion.proto``:

- ``clip_score``: mean cosine similarity between the prompt's CLIP text embedding and the frames' CLIP image
  embeddings, in [-1, 1];
- ``temporal_consistency``: mean cosine similarity of consecutive frames' CLIP image embeddings, in [-1, 1];
- ``flicker``: mean absolute change of mean frame luminance between consecutive frames, pixels scaled to [0, 1]
  (Rec. 601 luma: Y = 0.299 R + 0.587 G + 0.114 B), in [0, 1].

The CLIP parts look at no more than ``max_frames`` frames sampled evenly (first and last included); flicker looks at
every frame. A single-frame video has no temporal consistency and no flicker (None = unset).

:class:`CLIPScorer` reads a local CLIP directory (e.g. openai/clip-vit-base-patch32: ``CLIPModel`` weights, a
tokenizer and a ``CLIPImageProcessor`` config) with ``local_files_only``; :func:`build_tiny_clip` writes a tiny random
one in the same layout for tests and the single-machine demo.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import transformers

from .builder import build_tokenizer, write_dir

#: transformers is untyped for mypy: its classes are reached through Any.
T: Any = transformers

#: Rec. 601 luma weights for R, G, B.
LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float64)

DEFAULT_MAX_FRAMES = 16


class QualityModelError(RuntimeError):
    """The CLIP model directory is missing, unreadable or not a CLIP model."""


@dataclass(frozen=True)
class QualityMetrics:
    """Quality of one video; None = not computed (e.g. temporal parts of a single-frame video)."""

    clip_score: float | None
    temporal_consistency: float | None
    flicker: float | None


def _check_frames(frames: npt.NDArray[Any]) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError("frames must be a uint8 numpy array [T, H, W, 3]")
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"frames must have shape [T, H, W, 3] with T, H, W >= 1, got {frames.shape}")


def _finite(value: float, low: float, high: float) -> float | None:
    """``value`` clamped to [low, high]; None when it is not a finite number."""
    return min(max(value, low), high) if math.isfinite(value) else None


def flicker(frames: npt.NDArray[np.uint8]) -> float | None:
    """Mean absolute change of mean Rec. 601 luminance (pixels in [0, 1]) between consecutive frames, in [0, 1];
    None for a single frame. ``frames`` is uint8 [T, H, W, 3]."""
    _check_frames(frames)
    if len(frames) < 2:
        return None
    channel_means = frames.mean(axis=(1, 2), dtype=np.float64) / 255.0  # [T, 3]; luma is linear in the channels
    luma = channel_means @ LUMA_601
    return _finite(float(np.abs(np.diff(luma)).mean()), 0.0, 1.0)


def _normalise(embeddings: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    rows = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    unit: npt.NDArray[np.float64] = rows / np.maximum(norms, 1e-12)
    return unit


def temporal_consistency(embeddings: npt.NDArray[Any]) -> float | None:
    """Mean cosine similarity of consecutive rows of ``embeddings`` [N, D] (frame embeddings in time order), in
    [-1, 1]; None for fewer than two rows."""
    rows = np.asarray(embeddings)
    if rows.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array [N, D], got shape {rows.shape}")
    if len(rows) < 2:
        return None
    unit = _normalise(rows)
    return _finite(float(np.einsum("nd,nd->n", unit[1:], unit[:-1]).mean()), -1.0, 1.0)


def sample_indices(count: int, max_frames: int) -> npt.NDArray[np.int64]:
    """At most ``max_frames`` frame indices out of ``count``, evenly spaced, first and last included."""
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if count <= max_frames:
        return np.arange(count, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, max_frames).round().astype(np.int64))


def _features(output: Any) -> torch.Tensor:
    """Projected embeddings from ``get_text_features``/``get_image_features`` (a tensor in transformers 4, an
    output whose ``pooler_output`` holds them in 5)."""
    if isinstance(output, torch.Tensor):
        return output
    pooled: torch.Tensor = output.pooler_output
    return pooled


class CLIPScorer:
    """A loaded CLIP model measuring videos. Build with :meth:`load`; calls are serialised by a lock."""

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any, model_dir: Path, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.model_dir = model_dir
        self.device = device
        self.projection_dim = int(model.config.projection_dim)
        self._max_text_tokens = int(model.config.text_config.max_position_embeddings)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path, device: str = "cpu") -> CLIPScorer:
        """Load the CLIP model, tokenizer and image processor in ``model_dir`` (local files only) on ``device``."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise QualityModelError(f"CLIP model directory {model_dir} does not exist")
        if not (model_dir / "config.json").is_file():
            raise QualityModelError(f"{model_dir} is not a model directory (no config.json)")
        try:
            config = T.AutoConfig.from_pretrained(model_dir, local_files_only=True)
            if config.model_type != "clip":
                raise QualityModelError(f"{model_dir} holds a {config.model_type!r} model, not a CLIP model")
            model = T.CLIPModel.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
            tokenizer = T.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            image_processor = T.AutoImageProcessor.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            if isinstance(exc, QualityModelError):
                raise
            raise QualityModelError(f"cannot load the CLIP model from {model_dir}: {exc}") from exc
        model.eval().to(device)
        return cls(model, tokenizer, image_processor, model_dir, device)

    def text_embedding(self, prompt: str) -> npt.NDArray[np.float32]:
        """The prompt's CLIP text embedding [projection_dim], unit length (truncated to the model's context)."""
        tokens = self.tokenizer(prompt, truncation=True, max_length=self._max_text_tokens, return_tensors="pt")
        with self._lock, torch.inference_mode():
            features = _features(
                self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device),
                )
            )
        return _normalise(features[0].float().cpu().numpy()).astype(np.float32)

    def image_embeddings(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """CLIP image embeddings of ``frames`` (uint8 [N, H, W, 3]) as [N, projection_dim], unit rows."""
        _check_frames(frames)
        pixels = self.image_processor(images=list(frames), input_data_format="channels_last", return_tensors="pt")
        with self._lock, torch.inference_mode():
            features = _features(self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device)))
        return _normalise(features.float().cpu().numpy()).astype(np.float32)

    def measure(
        self, frames: npt.NDArray[np.uint8], prompt: str, max_frames: int = DEFAULT_MAX_FRAMES
    ) -> QualityMetrics:
        """Quality of ``frames`` (uint8 [T, H, W, 3]) generated for ``prompt``; see the module docstring."""
        _check_frames(frames)
        sampled = frames[sample_indices(len(frames), max_frames)]
        images = self.image_embeddings(sampled)
        text = self.text_embedding(prompt)
        score = float((images.astype(np.float64) @ text.astype(np.float64)).mean())
        return QualityMetrics(
            clip_score=_finite(score, -1.0, 1.0),
            temporal_consistency=temporal_consistency(images),
            flicker=flicker(frames),
        )


def build_tiny_clip(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random CLIP model with the offline word-level tokenizer and a 32 px CLIP image processor, saved
    to ``out_dir`` (must not exist or be empty) in the layout of a real CLIP directory; deterministic per seed."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty")
    tokenizer = build_tokenizer()
    config = T.CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.eos_token_id,
            "eos_token_id": tokenizer.eos_token_id,  # pooled at the first </s>, as in current CLIP configs
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T.CLIPModel(config).eval()
    # the PIL backend when torchvision is absent (transformers 5); both save as "CLIPImageProcessor"
    processor_class = getattr(T, "CLIPImageProcessorPil", None) or T.CLIPImageProcessor
    image_processor = processor_class(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})

    def save(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        image_processor.save_pretrained(staging)

    return write_dir(out_dir, save)
