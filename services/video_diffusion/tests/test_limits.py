"""Request validation against the contract's ranges and the model's limits: every error names its field."""

from __future__ import annotations

import dataclasses

import pytest

from creatormesh.common.errors import InvalidArgument
from creatormesh.video_diffusion.limits import (
    COGVIDEOX,
    WAN,
    GenerationRequest,
    Params,
    check_model,
    validate,
)
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb


def test_defaults_follow_the_contract_and_the_model() -> None:
    p = validate(GenerationRequest(prompt="a red sneaker", seed=7), WAN)
    assert p == Params("a red sneaker", "", 16, 8, 832, 480, 50, 5.0, 7)
    c = validate(GenerationRequest(prompt="x", seed=1), COGVIDEOX, default_negative_prompt="blurry")
    assert (c.width, c.height, c.guidance, c.negative_prompt) == (720, 480, 6.0, "blurry")
    random_seeds = {validate(GenerationRequest(prompt="x"), WAN).seed for _ in range(5)}
    assert len(random_seeds) > 1 and all(0 <= s < 2**32 for s in random_seeds)


def test_proto_messages_validate_the_same_way() -> None:
    msg = pb.GenerationParams(prompt="a car", num_frames=9, width=64, height=64, guidance_scale=0.0, seed=0)
    p = validate(msg, WAN)
    assert (p.num_frames, p.width, p.height, p.guidance, p.seed) == (9, 64, 64, 0.0, 0)
    unset = validate(pb.GenerationParams(prompt="a car"), WAN)
    assert unset.guidance == 5.0  # an unset optional is the default, an explicit 0.0 is kept


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"prompt": "  "}, "params.prompt", "required"),
        ({"prompt": "x" * 2001}, "params.prompt", "2000"),
        ({"negative_prompt": "x" * 2001}, "params.negative_prompt", "2000"),
        ({"num_frames": 258}, "params.num_frames", "1..257"),
        ({"num_frames": -1}, "params.num_frames", ""),
        ({"fps": 61}, "params.fps", ""),
        ({"width": 840}, "params.width", "multiple of 16"),
        ({"height": 32}, "params.height", "64..1920"),
        ({"width": 1936}, "params.width", ""),
        ({"num_inference_steps": 201}, "params.num_inference_steps", ""),
        ({"guidance_scale": 31.0}, "params.guidance_scale", ""),
        ({"guidance_scale": float("nan")}, "params.guidance_scale", "number"),
        ({"seed": -1}, "params.seed", ""),
        ({"seed": 2**32}, "params.seed", ""),
    ],
)
def test_invalid_fields_are_named(change: dict[str, object], field: str, text: str) -> None:
    request = dataclasses.replace(GenerationRequest(prompt="ok", seed=1), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        validate(request, WAN)
    assert caught.value.field == field
    assert text in caught.value.description


def test_model_limits() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(GenerationRequest(prompt="x", num_frames=50, seed=1), COGVIDEOX)
    assert caught.value.field == "params.num_frames"  # CogVideoX stops at 49
    assert [WAN.model_frames(n) for n in (1, 2, 5, 6, 16, 17)] == [1, 5, 5, 9, 17, 17]
    assert WAN.max_output_frames() == 257 and COGVIDEOX.max_output_frames() == 49
    tiny = Params("x", "", 9, 8, 32, 32, 2, 5.0, 0)
    check_model(tiny, WAN)  # below the contract's 64 px minimum but fine for the model
    for bad, field in (({"width": 33}, "params.width"), ({"steps": 0}, "params.num_inference_steps")):
        with pytest.raises(InvalidArgument) as caught:
            check_model(dataclasses.replace(tiny, **bad), WAN)  # type: ignore[arg-type]
        assert caught.value.field == field
