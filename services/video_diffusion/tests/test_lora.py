"""LoRA training, evaluation and hot-loading on the tiny random Wan pipeline (a few CPU steps at 32x32)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from creatormesh.common.errors import InvalidArgument
from creatormesh.video_diffusion.engine import Engine, Video, write_mp4
from creatormesh.video_diffusion.limits import Params
from creatormesh.video_diffusion.lora import (
    ADAPTER_INFO,
    WEIGHTS_NAME,
    MlflowTracker,
    Sample,
    TrainConfig,
    UnsupportedModel,
    evaluate_adapter,
    load_adapter,
    loaded_adapters,
    mlflow_available,
    read_adapter_info,
    train_lora,
    unload_adapter,
    video_tensor,
)

PROMPTS = ("a red car", "a blue sea at night", "a dog running on the beach", "a gold watch")
#: small enough for a few CPU steps: 32x32, 5 frames (2 latent frames of 4x4), rank 4
CONFIG = TrainConfig(rank=4, steps=3, width=32, height=32, num_frames=5, learning_rate=1e-2, seed=7)
GEN = Params("a red car", "", 9, 8, 32, 32, 2, 5.0, 3)


@pytest.fixture(scope="module")
def samples(wan_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """Four prompt-video pairs: MP4s the tiny pipeline generated (9 frames, 32x32)."""
    root = tmp_path_factory.mktemp("lora-samples")
    pairs = []
    for seed, prompt in enumerate(PROMPTS):
        video = wan_engine.generate(Params(prompt, "", 9, 8, 32, 32, 2, 5.0, seed))
        pairs.append(Sample(prompt, write_mp4(video, root / f"{seed}.mp4")))
    return pairs


@pytest.fixture(scope="module")
def adapters(tiny_wan_dir: Path, samples: list[Sample], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two adapter versions trained on different pairs with different alphas and seeds."""
    root = tmp_path_factory.mktemp("lora-adapters")
    v1 = train_lora(tiny_wan_dir, samples[:2], root / "v1", replace(CONFIG, steps=8, seed=1)).adapter_dir
    v2 = train_lora(tiny_wan_dir, samples[2:], root / "v2", replace(CONFIG, steps=8, alpha=8.0, seed=2)).adapter_dir
    return [v1, v2]


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_video_tensor_resizes_crops_and_fits_frames(tmp_path: Path) -> None:
    ramp = np.linspace(0, 255, 48, dtype=np.float32).round().astype(np.uint8)
    frames = np.broadcast_to(ramp[None, None, :, None], (3, 32, 48, 3)).copy()  # 3 frames, 48 wide, 32 high
    path = write_mp4(Video(frames, 8), tmp_path / "ramp.mp4")
    video = video_tensor(path, 16, 16, 5)  # cover 16x16 (24x16), centre crop; 3 frames stretched to 5
    assert video.shape == (3, 5, 16, 16) and video.dtype == torch.float32
    assert float(video.min()) >= -1.0 and float(video.max()) <= 1.0
    row = video[0, 0, 8]
    assert float(row[0]) > -0.8 and float(row[-1]) < 0.8  # the crop dropped both dark and bright ends
    assert float(row[-1]) - float(row[0]) > 0.5  # the ramp still rises left to right
    torch.testing.assert_close(video[:, 0], video[:, 1])  # stretched: frame 0 repeats
    assert video_tensor(path, 16, 16, 1).shape == (3, 1, 16, 16)


def test_training_saves_lora_only_and_is_deterministic(
    tiny_wan_dir: Path, samples: list[Sample], tmp_path: Path
) -> None:
    before = _digest(tiny_wan_dir)
    seen: list[tuple[int, int, float]] = []
    config = replace(CONFIG, gradient_accumulation=2, batch_size=2)
    result = train_lora(
        tiny_wan_dir, samples[:3], tmp_path / "a", config, on_step=lambda s, n, loss: seen.append((s, n, loss))
    )
    assert result.steps == 3 and len(result.losses) == 3
    assert all(np.isfinite(result.losses)) and np.isfinite(result.final_loss)
    assert [(s, n) for s, n, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert [loss for *_, loss in seen] == result.losses
    assert {p.name for p in (tmp_path / "a").iterdir()} == {ADAPTER_INFO, WEIGHTS_NAME}

    weights = load_file(tmp_path / "a" / WEIGHTS_NAME)
    # 2 blocks x (self + cross attention) x (to_q, to_k, to_v, to_out.0) x (lora_A, lora_B)
    assert len(weights) == 2 * 2 * 4 * 2
    assert all(k.startswith("transformer.blocks.") and (".lora_A." in k or ".lora_B." in k) for k in weights)
    assert all(v.shape[0] == 4 for k, v in weights.items() if ".lora_A." in k)  # rank 4
    assert all(v.abs().max() > 0 for k, v in weights.items() if ".lora_B." in k)  # B starts at zero: it trained
    assert _digest(tiny_wan_dir) == before  # the base model is untouched

    info = read_adapter_info(tmp_path / "a")
    assert info["rank"] == 4 and info["alpha"] == 4.0 and info["steps"] == 3 and info["samples"] == 3
    assert info["base_model"] == tiny_wan_dir.name and info["final_loss"] == pytest.approx(result.final_loss)
    assert info["batch_size"] == 4  # 2 per micro-batch x 2 accumulated

    again = train_lora(tiny_wan_dir, samples[:3], tmp_path / "b", config)
    assert again.losses == result.losses
    again_weights = load_file(tmp_path / "b" / WEIGHTS_NAME)
    assert again_weights.keys() == weights.keys()
    assert all(torch.equal(again_weights[k], v) for k, v in weights.items())
    other = train_lora(tiny_wan_dir, samples[:3], tmp_path / "c", replace(config, seed=8))
    assert other.losses != result.losses

    with pytest.raises(FileExistsError):
        train_lora(tiny_wan_dir, samples[:1], tmp_path / "a", config)


def test_training_lowers_the_sample_loss(tiny_wan_dir: Path, samples: list[Sample], tmp_path: Path) -> None:
    # measured: base 1.62 -> 1.15 (x0.71) after 40 steps at lr 1e-2, about 1 s; x0.69-0.73 over seeds 0-3
    config = replace(CONFIG, steps=40)
    base = evaluate_adapter(tiny_wan_dir, None, samples[:1], config)
    result = train_lora(tiny_wan_dir, samples[:1], tmp_path / "fit", config)
    tuned = evaluate_adapter(tiny_wan_dir, tmp_path / "fit", samples[:1], config)
    assert tuned < 0.85 * base, (base, tuned)
    assert result.final_loss < result.losses[0]


def test_evaluate_is_deterministic(tiny_wan_dir: Path, samples: list[Sample], adapters: list[Path]) -> None:
    first = evaluate_adapter(tiny_wan_dir, adapters[0], samples, CONFIG)
    assert evaluate_adapter(tiny_wan_dir, adapters[0], samples, CONFIG) == first
    assert np.isfinite(first)
    assert evaluate_adapter(tiny_wan_dir, None, samples, CONFIG) != first  # the adapter changes the model
    assert evaluate_adapter(tiny_wan_dir, adapters[0], samples, replace(CONFIG, seed=8)) != first  # other noise


def test_training_continues_from_an_adapter(
    tiny_wan_dir: Path, samples: list[Sample], adapters: list[Path], tmp_path: Path
) -> None:
    config = replace(CONFIG, steps=2, rank=16)
    scratch = train_lora(tiny_wan_dir, samples[2:], tmp_path / "scratch", config)
    resumed = train_lora(tiny_wan_dir, samples[2:], tmp_path / "resumed", config, init_adapter=adapters[1])
    info = read_adapter_info(tmp_path / "resumed")
    assert (info["rank"], info["alpha"]) == (4, 8.0)  # the initial adapter's shape wins over the config
    assert info["init_adapter"] == str(adapters[1])
    # same seed, same first noise and timesteps: v2 was trained on these pairs, so it starts lower
    assert resumed.losses[0] < scratch.losses[0]


def test_hot_load_switches_and_unloads(tiny_wan_dir: Path, adapters: list[Path]) -> None:
    engine = Engine.load(tiny_wan_dir)  # an own engine: the shared wan_engine stays on the base model
    base = engine.generate(GEN).frames

    assert load_adapter(engine.pipe, adapters[0], "v1") == "v1"
    with_v1 = engine.generate(GEN).frames
    assert not np.array_equal(with_v1, base)
    assert engine.generate(GEN).frames.tobytes() == with_v1.tobytes()

    load_adapter(engine.pipe, adapters[1], "v2")
    assert loaded_adapters(engine.pipe) == ["v2"]  # v1 deleted, not stacked
    with_v2 = engine.generate(GEN).frames
    assert engine.pipe.transformer.peft_config["v2"].lora_alpha == 8.0  # alpha travels with the weights

    unload_adapter(engine.pipe)
    assert loaded_adapters(engine.pipe) == []
    assert np.array_equal(engine.generate(GEN).frames, base)

    fresh = Engine.load(tiny_wan_dir)
    load_adapter(fresh.pipe, adapters[1], "2026-01-v2")
    assert loaded_adapters(fresh.pipe) == ["v_2026_01_v2"]
    assert np.array_equal(fresh.generate(GEN).frames, with_v2)

    # the engine's own switch reads the same files
    engine.use_adapter("v2", adapters[1] / WEIGHTS_NAME)
    assert np.array_equal(engine.generate(GEN).frames, with_v2)
    engine.use_adapter("base", None)
    assert np.array_equal(engine.generate(GEN).frames, base)


def test_only_wan_trains_and_config_is_checked(
    tiny_cogvideox_dir: Path, tiny_wan_dir: Path, samples: list[Sample], tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedModel, match="Wan pipelines only"):
        train_lora(tiny_cogvideox_dir, samples[:1], tmp_path / "cog", CONFIG)
    with pytest.raises(UnsupportedModel):
        evaluate_adapter(tiny_cogvideox_dir, None, samples[:1], CONFIG)
    with pytest.raises(InvalidArgument, match="num_frames"):
        train_lora(tiny_wan_dir, samples[:1], tmp_path / "x", replace(CONFIG, num_frames=6))
    with pytest.raises(InvalidArgument, match="width"):
        train_lora(tiny_wan_dir, samples[:1], tmp_path / "x", replace(CONFIG, width=40))
    with pytest.raises(InvalidArgument, match="samples"):
        train_lora(tiny_wan_dir, [], tmp_path / "x", CONFIG)
    with pytest.raises(FileNotFoundError):
        train_lora(tiny_wan_dir, [Sample("a cat", tmp_path / "missing.mp4")], tmp_path / "x", CONFIG)
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not mlflow_available(), reason="mlflow-skinny is not installed")
def test_mlflow_run_is_logged(tiny_wan_dir: Path, samples: list[Sample], tmp_path: Path) -> None:
    with MlflowTracker("video-diffusion-lora", store_dir=tmp_path / "mlflow", run_name="tiny") as tracker:
        result = train_lora(tiny_wan_dir, samples[:1], tmp_path / "a", CONFIG, tracker=tracker)
        tracker.log_metrics({"eval_loss": 1.5}, step=result.steps)
        tracker.log_artifact(tmp_path / "a" / ADAPTER_INFO)
    run = tracker.client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["rank"] == "4" and run.data.params["base_model"] == tiny_wan_dir.name
    history = tracker.client.get_metric_history(tracker.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx(result.losses)
    assert run.data.metrics["eval_loss"] == 1.5 and "final_loss" in run.data.metrics
    artifacts = [a.path for a in tracker.client.list_artifacts(tracker.run_id)]
    assert artifacts == [ADAPTER_INFO]
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    assert json.loads(next((tmp_path / "mlflow" / "artifacts").rglob(ADAPTER_INFO)).read_text())["steps"] == 3
