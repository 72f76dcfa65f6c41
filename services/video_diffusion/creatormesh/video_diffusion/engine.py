"""Text-to-video engine on diffusers' own pipelines (``WanPipeline``, ``CogVideoXPipeline``),
loaded from a local directory."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from creatormesh.common.media import write_h264

from .limits import LIMITS, ModelLimits, Params, check_model

log = logging.getLogger(__name__)

#: model_index.json ``_class_name`` -> pipeline kind (see :data:`creatormesh.video_diffusion.limits.LIMITS`).
PIPELINE_KINDS = {"WanPipeline": "wan", "CogVideoXPipeline": "cogvideox"}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

StepCallback = Callable[[int, int], None]


class ModelError(RuntimeError):
    """The model directory is missing, unreadable or not a supported text-to-video pipeline."""


@dataclass(frozen=True)
class Video:
    """A generated video: ``frames`` is uint8 ``[T, H, W, 3]``."""

    frames: npt.NDArray[np.uint8]
    fps: int

    @property
    def duration_s(self) -> float:
        """Duration in seconds, frames / fps."""
        return len(self.frames) / self.fps


def pipeline_kind(model_dir: Path) -> str:
    """The pipeline kind ("wan" or "cogvideox") of a local diffusers model directory, from its model_index.json."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    index = model_dir / "model_index.json"
    try:
        class_name = json.loads(index.read_text())["_class_name"]
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is not a diffusers model directory (no model_index.json)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{index} is not a valid diffusers model index: {exc}") from exc
    if class_name not in PIPELINE_KINDS:
        supported = ", ".join(PIPELINE_KINDS)
        raise ModelError(f"{model_dir} holds a {class_name}; supported pipelines: {supported}")
    return PIPELINE_KINDS[class_name]


class Engine:
    """One loaded text-to-video pipeline. Build with :meth:`load`; :meth:`generate` runs one video at a time."""

    def __init__(self, pipe: Any, kind: str, model_dir: Path, device: str, memory_options: tuple[str, ...]) -> None:
        self.pipe = pipe
        self.kind = kind
        self.limits: ModelLimits = LIMITS[kind]
        self.model_dir = model_dir
        self.device = device
        #: the memory options actually applied ("cpu_offload", "vae_tiling", "vae_slicing")
        self.memory_options = memory_options
        self.warmed_up = False
        #: the LoRA adapter version the pipeline generates with ("base": none)
        self.adapter_version = "base"
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        vae_slicing: bool = False,
    ) -> Engine:
        """Load the pipeline in ``model_dir`` (local files only) on ``device`` in ``dtype``.

        The VAE stays float32 for Wan (as its authors recommend). ``cpu_offload`` (model CPU offload onto an
        accelerator ``device``) and VAE tiling/slicing are applied when set and supported; see ``memory_options``.
        """
        import diffusers

        d: Any = diffusers  # untyped for mypy

        model_dir = Path(model_dir)
        kind = pipeline_kind(model_dir)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        torch_dtype = DTYPES[dtype]
        try:
            if kind == "wan":
                vae = d.AutoencoderKLWan.from_pretrained(
                    model_dir, subfolder="vae", dtype=torch.float32, local_files_only=True
                )
                pipe = d.WanPipeline.from_pretrained(model_dir, vae=vae, dtype=torch_dtype, local_files_only=True)
            else:
                pipe = d.CogVideoXPipeline.from_pretrained(model_dir, dtype=torch_dtype, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load the {kind} pipeline from {model_dir}: {exc}") from exc
        pipe.set_progress_bar_config(disable=True)
        applied: list[str] = []
        if cpu_offload and device != "cpu":
            pipe.enable_model_cpu_offload(device=device)
            applied.append("cpu_offload")
        else:
            if cpu_offload:
                log.warning("cpu_offload ignored: the pipeline already runs on the CPU")
            pipe.to(device)
        if vae_tiling and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
            applied.append("vae_tiling")
        if vae_slicing and hasattr(pipe.vae, "enable_slicing"):
            pipe.vae.enable_slicing()
            applied.append("vae_slicing")
        return cls(pipe, kind, model_dir, device, tuple(applied))

    def use_adapter(self, version: str, weights: Path | None) -> None:
        """Generate with the LoRA adapter whose weights file (diffusers' LoRA format, ``lora.WEIGHTS_NAME``) is
        ``weights`` from now on, or with none (``weights`` None, version "base"). Waits for a running generation;
        the previous adapter is removed, never stacked."""
        from .lora import WEIGHTS_NAME, load_adapter, unload_adapter

        with self._lock:
            if version == self.adapter_version:
                return
            if weights is None:
                unload_adapter(self.pipe)
            else:
                if weights.name != WEIGHTS_NAME:
                    raise ModelError(f"LoRA weights must be a file named {WEIGHTS_NAME}, got {weights}")
                load_adapter(self.pipe, weights.parent, version)
            self.adapter_version = version

    def warm_up(self) -> float:
        """Run one short generation (1 step, smallest sizes) so no request pays the cold start; returns seconds."""
        started = time.perf_counter()
        side = 2 * self.limits.size_multiple
        frames = self.limits.model_frames(self.limits.frame_step + 1)
        self.generate(Params("warm up", "", frames, 8, side, side, 1, self.limits.default_guidance, 0))
        self.warmed_up = True
        return time.perf_counter() - started

    def generate(self, params: Params, on_step: StepCallback | None = None) -> Video:
        """Generate one video. ``on_step(step, total)`` runs after each denoising step (step is 1-based); an
        exception it raises aborts the generation (that is how a caller cancels). Same params -> same frames."""
        check_model(params, self.limits)
        frames_needed = self.limits.model_frames(params.num_frames)
        generator = torch.Generator(device="cpu").manual_seed(params.seed)

        def step_end(pipe: Any, index: int, _timestep: Any, _tensors: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                on_step(index + 1, int(getattr(pipe, "num_timesteps", params.steps)))
            return {}

        extra: dict[str, Any] = {}
        if self.kind == "cogvideox":
            extra["max_sequence_length"] = int(self.pipe.transformer.config.max_text_seq_length)
        with self._lock, torch.inference_mode():
            output = self.pipe(
                prompt=params.prompt,
                negative_prompt=params.negative_prompt or None,
                num_frames=frames_needed,
                width=params.width,
                height=params.height,
                num_inference_steps=params.steps,
                guidance_scale=params.guidance,
                generator=generator,
                output_type="np",
                callback_on_step_end=step_end,
                **extra,
            )
        video = np.asarray(output.frames[0], dtype=np.float32)[: params.num_frames]
        frames = (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        return Video(frames=np.ascontiguousarray(frames), fps=params.fps)


def write_mp4(video: Video, path: Path, *, crf: int = 18) -> Path:
    """Write ``video`` as H.264 MP4 (yuv420p, faststart) with the kit's ffmpeg; atomic (temp file, then replace)."""
    return write_h264(video.frames, video.fps, path, crf=crf)
