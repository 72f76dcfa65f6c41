"""Shared by the service tests: request builders and the service starter's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from creatormesh.video_diffusion.app import VideoDiffusionService
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["VideoDiffusionService"]
Start = Callable[..., Awaitable[tuple[Any, VideoDiffusionService]]]


def tiny_params(prompt: str = "a red sneaker ad on a city street", **extra: Any) -> pb.GenerationParams:
    values: dict[str, Any] = {
        "prompt": prompt, "num_frames": 9, "fps": 8, "width": 64, "height": 64, "num_inference_steps": 2,
        "seed": 11, "num_candidates": 2, **extra,
    }  # fmt: skip
    return pb.GenerationParams(**values)
