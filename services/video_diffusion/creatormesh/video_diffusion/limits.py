"""Generation parameters and their validation against the contract and the model's limits.

The ranges and defaults follow ``GenerationParams`` in
``protos/creatormesh/video_diffusion/v1/video_diffusion.proto``; what a model accepts (frame counts its VAE can
decode, sizes its VAE and patching divide) comes from :class:`ModelLimits`.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

from creatormesh.common.errors import InvalidArgument, require

MAX_PROMPT_CHARS = 2000
MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 1, 257, 16
MIN_FPS, MAX_FPS, DEFAULT_FPS = 1, 60, 8
MIN_SIZE, MAX_SIZE = 64, 1920
MIN_STEPS, MAX_STEPS = 1, 200
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class ModelLimits:
    """What one pipeline kind accepts and its defaults.

    A frame count ``n`` is accepted when ``n % frame_step == 1`` (``frame_step`` is the VAE's temporal factor) and
    ``n <= max_model_frames``; width and height must be multiples of ``size_multiple``.
    """

    kind: str
    frame_step: int
    max_model_frames: int
    size_multiple: int
    default_width: int
    default_height: int
    default_steps: int
    default_guidance: float

    def model_frames(self, frames: int) -> int:
        """The smallest frame count the model accepts that is >= ``frames`` (the extra frames get dropped)."""
        extra = (1 - frames) % self.frame_step
        return max(frames, 1) + extra

    def max_output_frames(self) -> int:
        """The most frames one video can have: the contract's maximum, capped by the model's."""
        return min(MAX_FRAMES, self.max_model_frames)


#: Wan2.1 T2V: VAE temporal factor 4 (4k+1 frames), spatial 8 x patch 2 = 16; 480p defaults, 50 steps, guidance 5.
WAN = ModelLimits(
    kind="wan",
    frame_step=4,
    max_model_frames=MAX_FRAMES,
    size_multiple=16,
    default_width=832,
    default_height=480,
    default_steps=50,
    default_guidance=5.0,
)

#: CogVideoX (2b/5b): 4k+1 frames up to 49 (its training length), sizes multiple of 16, 720x480, 50 steps, guidance 6.
COGVIDEOX = ModelLimits(
    kind="cogvideox",
    frame_step=4,
    max_model_frames=49,
    size_multiple=16,
    default_width=720,
    default_height=480,
    default_steps=50,
    default_guidance=6.0,
)

LIMITS = {"wan": WAN, "cogvideox": COGVIDEOX}


@dataclass(frozen=True)
class GenerationRequest:
    """A request's generation parameters as sent (``GenerationParams``): zero/None mean "default"."""

    prompt: str
    negative_prompt: str = ""
    num_frames: int = 0
    fps: int = 0
    width: int = 0
    height: int = 0
    num_inference_steps: int = 0
    guidance_scale: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Params:
    """Effective generation parameters: defaults filled in, seed resolved. ``num_frames`` is the output count."""

    prompt: str
    negative_prompt: str
    num_frames: int
    fps: int
    width: int
    height: int
    steps: int
    guidance: float
    seed: int


def _optional(request: Any, name: str) -> Any:
    """The value of an optional field, None when unset (proto messages via HasField, dataclasses via None)."""
    if hasattr(request, "HasField"):
        return getattr(request, name) if request.HasField(name) else None
    return getattr(request, name, None)


def _in_range(value: float, low: float, high: float, field: str) -> None:
    require(low <= value <= high, field, f"must be in {low}..{high}, got {value}")


def validate(request: Any, limits: ModelLimits, *, prefix: str = "params", default_negative_prompt: str = "") -> Params:
    """Check a ``GenerationParams``-like object (proto message or :class:`GenerationRequest`) and fill defaults.

    Raises :class:`InvalidArgument` naming the field, e.g. ``params.num_frames``.
    """
    prompt = str(request.prompt)
    require(prompt.strip() != "", f"{prefix}.prompt", "is required")
    require(len(prompt) <= MAX_PROMPT_CHARS, f"{prefix}.prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
    negative = str(request.negative_prompt)
    require(
        len(negative) <= MAX_PROMPT_CHARS,
        f"{prefix}.negative_prompt",
        f"must be at most {MAX_PROMPT_CHARS} characters",
    )
    frames = int(request.num_frames) or DEFAULT_FRAMES
    _in_range(frames, MIN_FRAMES, limits.max_output_frames(), f"{prefix}.num_frames")
    fps = int(request.fps) or DEFAULT_FPS
    _in_range(fps, MIN_FPS, MAX_FPS, f"{prefix}.fps")
    sizes = {}
    for name, default in (("width", limits.default_width), ("height", limits.default_height)):
        value = int(getattr(request, name)) or default
        _in_range(value, MIN_SIZE, MAX_SIZE, f"{prefix}.{name}")
        require(
            value % limits.size_multiple == 0,
            f"{prefix}.{name}",
            f"must be a multiple of {limits.size_multiple}, got {value}",
        )
        sizes[name] = value
    steps = int(request.num_inference_steps) or limits.default_steps
    _in_range(steps, MIN_STEPS, MAX_STEPS, f"{prefix}.num_inference_steps")
    guidance = _optional(request, "guidance_scale")
    guidance = limits.default_guidance if guidance is None else float(guidance)
    require(not math.isnan(guidance), f"{prefix}.guidance_scale", "must be a number")
    _in_range(guidance, MIN_GUIDANCE, MAX_GUIDANCE, f"{prefix}.guidance_scale")
    seed = _optional(request, "seed")
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else int(seed)
    _in_range(seed, 0, MAX_SEED, f"{prefix}.seed")
    return Params(
        prompt=prompt,
        negative_prompt=negative or default_negative_prompt,
        num_frames=frames,
        fps=fps,
        width=sizes["width"],
        height=sizes["height"],
        steps=steps,
        guidance=guidance,
        seed=seed,
    )


def check_model(params: Params, limits: ModelLimits, *, prefix: str = "params") -> None:
    """Check only what the model itself needs (no contract ranges): the engine runs this before every generation,
    so a small model (e.g. the tiny test pipeline at 32x32) can run sizes below the contract's minimum."""
    require(params.prompt.strip() != "", f"{prefix}.prompt", "is required")
    _in_range(params.num_frames, 1, limits.max_model_frames, f"{prefix}.num_frames")
    _in_range(params.fps, MIN_FPS, MAX_FPS, f"{prefix}.fps")
    for name in ("width", "height"):
        value = getattr(params, name)
        require(
            value > 0 and value % limits.size_multiple == 0,
            f"{prefix}.{name}",
            f"must be a positive multiple of {limits.size_multiple}, got {value}",
        )
    require(params.steps >= 1, f"{prefix}.num_inference_steps", f"must be at least 1, got {params.steps}")
    _in_range(params.seed, 0, MAX_SEED, f"{prefix}.seed")


__all__ = [
    "COGVIDEOX",
    "LIMITS",
    "WAN",
    "GenerationRequest",
    "InvalidArgument",
    "ModelLimits",
    "Params",
    "check_model",
    "validate",
]
