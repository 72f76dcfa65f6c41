"""The engine on tiny random pipelines built and saved like the real models, loaded the production way."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.errors import InvalidArgument
from creatormesh.common.media import ffmpeg_exe
from creatormesh.video_diffusion.builder import build_tiny, build_tokenizer
from creatormesh.video_diffusion.engine import Engine, ModelError, Video, pipeline_kind, write_mp4
from creatormesh.video_diffusion.limits import Params

TINY = Params("a red sneaker ad on a city street at night", "", 9, 8, 32, 32, 2, 5.0, 42)


def test_builder_writes_a_normal_model_directory(tiny_wan_dir: Path, tmp_path: Path) -> None:
    index = json.loads((tiny_wan_dir / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"} <= set(index)
    weights = sorted(p.relative_to(tiny_wan_dir).as_posix() for p in tiny_wan_dir.rglob("*.safetensors"))
    assert [w.split("/")[0] for w in weights] == ["text_encoder", "transformer", "vae"]
    assert not list(tiny_wan_dir.rglob("*.bin"))  # safetensors only
    assert pipeline_kind(tiny_wan_dir) == "wan"
    with pytest.raises(FileExistsError):
        build_tiny(tiny_wan_dir)
    with pytest.raises(ValueError, match="unknown pipeline kind"):
        build_tiny(tmp_path / "x", kind="sora")
    assert not (tmp_path / "x").exists()


def test_tokenizer_is_offline_and_t5_like() -> None:
    tok = build_tokenizer()
    ids = tok("A RED car zzzunknown")["input_ids"]
    assert ids[-1] == tok.eos_token_id == 1
    assert tok.unk_token_id in ids and tok.pad_token_id == 0
    assert tok.convert_ids_to_tokens(ids[:3]) == ["a", "red", "car"]


def test_generate_is_deterministic_and_exact(wan_engine: Engine) -> None:
    steps: list[tuple[int, int]] = []
    video = wan_engine.generate(TINY, on_step=lambda i, n: steps.append((i, n)))
    assert steps == [(1, 2), (2, 2)]
    assert video.frames.shape == (9, 32, 32, 3) and video.frames.dtype == np.uint8
    assert video.fps == 8 and video.duration_s == pytest.approx(9 / 8)
    assert video.frames.std() > 0  # not a blank video
    again = wan_engine.generate(TINY)
    assert np.array_equal(video.frames, again.frames)
    other = wan_engine.generate(Params(**{**TINY.__dict__, "seed": 43}))
    assert not np.array_equal(video.frames, other.frames)


def test_output_has_the_requested_frame_count(wan_engine: Engine) -> None:
    video = wan_engine.generate(Params(**{**TINY.__dict__, "num_frames": 7, "steps": 1}))
    assert video.frames.shape[0] == 7  # the model made 9 (4k+1); the extra frames are dropped


def test_cancel_through_the_step_callback(wan_engine: Engine) -> None:
    class Stop(Exception):
        pass

    def stop_after_one(step: int, _total: int) -> None:
        if step == 1:
            raise Stop

    with pytest.raises(Stop):
        wan_engine.generate(TINY, on_step=stop_after_one)
    assert wan_engine.generate(TINY).frames.shape[0] == 9  # the engine still works


def test_model_limits_are_checked(wan_engine: Engine) -> None:
    with pytest.raises(InvalidArgument) as caught:
        wan_engine.generate(Params(**{**TINY.__dict__, "width": 40}))
    assert caught.value.field == "params.width"


def test_warm_up(tiny_wan_dir: Path) -> None:
    engine = Engine.load(tiny_wan_dir, vae_tiling=True, vae_slicing=True, cpu_offload=True)
    assert engine.kind == "wan" and not engine.warmed_up
    assert "cpu_offload" not in engine.memory_options  # nothing to offload to on a CPU
    assert engine.warm_up() > 0 and engine.warmed_up


def test_reloaded_pipeline_matches_the_fresh_one(tiny_wan_dir: Path, wan_engine: Engine) -> None:
    other = Engine.load(tiny_wan_dir)
    assert np.array_equal(other.generate(TINY).frames, wan_engine.generate(TINY).frames)


def test_cogvideox(tiny_cogvideox_dir: Path) -> None:
    engine = Engine.load(tiny_cogvideox_dir)
    assert engine.kind == "cogvideox" and pipeline_kind(tiny_cogvideox_dir) == "cogvideox"
    video = engine.generate(Params("a blue car", "", 9, 8, 16, 16, 2, 6.0, 1))
    assert video.frames.shape == (9, 16, 16, 3)


def test_bad_model_directories(tmp_path: Path, tiny_wan_dir: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Engine.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"model_index\.json"):
        Engine.load(tmp_path / "empty")
    other = tmp_path / "sd"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelError, match="supported pipelines"):
        Engine.load(other)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_wan_dir, broken)
    for weights in (broken / "transformer").glob("*.safetensors"):
        weights.write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot load"):
        Engine.load(broken)
    with pytest.raises(ValueError, match="dtype"):
        Engine.load(tiny_wan_dir, dtype="float64")


def test_write_mp4_is_playable(wan_engine: Engine, tmp_path: Path) -> None:
    video = wan_engine.generate(Params(**{**TINY.__dict__, "num_frames": 16, "steps": 1}))
    path = write_mp4(video, tmp_path / "out" / "v.mp4")
    probe = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True, check=False
    )
    assert probe.returncode == 0 and probe.stderr == ""
    info = subprocess.run([ffmpeg_exe(), "-i", str(path)], capture_output=True, text=True, check=False).stderr
    assert "h264" in info and "32x32" in info and "8 fps" in info
    assert "Duration: 00:00:02.00" in info  # 16 frames at 8 fps
    assert [p.name for p in path.parent.iterdir()] == ["v.mp4"]  # no temp file left
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(Video(np.zeros((0, 32, 32, 3), np.uint8), 8), tmp_path / "empty.mp4")
    assert not (tmp_path / "empty.mp4").exists()
