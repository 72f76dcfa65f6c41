"""Video quality on a tiny random CLIP built and saved like openai/clip-vit-base-patch32 and loaded the production way,
measuring real tiny Wan generations and synthetic frames."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import transformers

from creatormesh.video_diffusion.engine import Engine
from creatormesh.video_diffusion.limits import Params
from creatormesh.video_diffusion.quality import (
    CLIPScorer,
    QualityMetrics,
    QualityModelError,
    build_tiny_clip,
    flicker,
    sample_indices,
    temporal_consistency,
)

PROMPT = "a red sneaker ad on a city street at night"


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def scorer(tiny_clip_dir: Path) -> CLIPScorer:
    return CLIPScorer.load(tiny_clip_dir)


@pytest.fixture(scope="module")
def wan_frames(wan_engine: Engine) -> np.ndarray:
    return wan_engine.generate(Params(PROMPT, "", 9, 8, 32, 32, 2, 5.0, 0)).frames


def noise(count: int, seed: int = 0, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)


def assert_in_ranges(metrics: QualityMetrics) -> None:
    assert metrics.clip_score is not None and -1.0 <= metrics.clip_score <= 1.0
    if metrics.temporal_consistency is not None:
        assert -1.0 <= metrics.temporal_consistency <= 1.0
    if metrics.flicker is not None:
        assert 0.0 <= metrics.flicker <= 1.0


# --- the model directory ----------------------------------------------------------------------------------------


def test_builder_writes_a_normal_clip_directory(tiny_clip_dir: Path, tmp_path: Path) -> None:
    files = {p.name for p in tiny_clip_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= files
    assert not list(tiny_clip_dir.rglob("*.bin"))  # safetensors only
    config = json.loads((tiny_clip_dir / "config.json").read_text())
    assert config["architectures"] == ["CLIPModel"]
    assert json.loads((tiny_clip_dir / "preprocessor_config.json").read_text())["image_processor_type"] == (
        "CLIPImageProcessor"
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_clip_dir, local_files_only=True)
    assert len(tokenizer) == config["text_config"]["vocab_size"]
    assert tokenizer("a red car")["input_ids"][-1] == config["text_config"]["eos_token_id"]
    with pytest.raises(FileExistsError):
        build_tiny_clip(tiny_clip_dir)


def test_same_seed_builds_the_same_model(scorer: CLIPScorer, tmp_path: Path) -> None:
    again = CLIPScorer.load(build_tiny_clip(tmp_path / "clip-0", seed=0))
    other = CLIPScorer.load(build_tiny_clip(tmp_path / "clip-1", seed=1))
    np.testing.assert_array_equal(again.text_embedding(PROMPT), scorer.text_embedding(PROMPT))
    np.testing.assert_array_equal(again.image_embeddings(noise(2)), scorer.image_embeddings(noise(2)))
    assert not np.allclose(other.text_embedding(PROMPT), scorer.text_embedding(PROMPT))


def test_load_rejects_missing_and_foreign_directories(tmp_path: Path, tiny_wan_dir: Path) -> None:
    with pytest.raises(QualityModelError, match="does not exist"):
        CLIPScorer.load(tmp_path / "nowhere")
    with pytest.raises(QualityModelError, match=r"no config\.json"):
        CLIPScorer.load(tmp_path)
    with pytest.raises(QualityModelError, match="not a CLIP model"):
        CLIPScorer.load(tiny_wan_dir / "text_encoder")  # a UMT5 encoder
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(QualityModelError, match="cannot load"):
        CLIPScorer.load(tmp_path)


def test_load_rejects_a_clip_directory_without_weights(tiny_clip_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "clip"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (broken / name).write_bytes((tiny_clip_dir / name).read_bytes())
    with pytest.raises(QualityModelError, match="cannot load"):
        CLIPScorer.load(broken)


# --- embeddings and the CLIP score ------------------------------------------------------------------------------


def test_text_and_image_embeddings_have_the_projection_dim(scorer: CLIPScorer) -> None:
    assert scorer.projection_dim == 16
    text = scorer.text_embedding(PROMPT)
    assert text.shape == (16,) and text.dtype == np.float32
    assert np.linalg.norm(text) == pytest.approx(1.0, abs=1e-5)
    images = scorer.image_embeddings(noise(3, size=(40, 56)))  # resized and cropped to 32 px by the processor
    assert images.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])
    # a text longer than the model's 64 positions is truncated, not an error
    assert scorer.text_embedding(" ".join(["car"] * 200)).shape == (16,)


def test_measures_a_real_wan_generation(scorer: CLIPScorer, wan_frames: np.ndarray) -> None:
    assert wan_frames.shape == (9, 32, 32, 3) and wan_frames.dtype == np.uint8
    metrics = scorer.measure(wan_frames, PROMPT)
    assert_in_ranges(metrics)
    assert metrics.temporal_consistency is not None and metrics.flicker is not None
    images = scorer.image_embeddings(wan_frames)
    expected = float((images @ scorer.text_embedding(PROMPT)).mean())
    assert metrics.clip_score == pytest.approx(expected, abs=1e-5)
    assert metrics.temporal_consistency == pytest.approx(temporal_consistency(images), abs=1e-6)
    assert metrics.flicker == flicker(wan_frames)
    assert scorer.measure(wan_frames, PROMPT) == metrics  # deterministic


def test_a_different_prompt_gives_a_different_clip_score(scorer: CLIPScorer, wan_frames: np.ndarray) -> None:
    base = scorer.measure(wan_frames, PROMPT)
    other = scorer.measure(wan_frames, "a chef cooking pizza in the forest")
    assert other.clip_score is not None and base.clip_score is not None
    assert abs(other.clip_score - base.clip_score) > 1e-3
    assert (other.temporal_consistency, other.flicker) == (base.temporal_consistency, base.flicker)


def test_constant_video_is_smooth_and_flicker_free(scorer: CLIPScorer) -> None:
    frames = np.full((6, 40, 48, 3), (200, 30, 90), dtype=np.uint8)
    metrics = scorer.measure(frames, PROMPT)
    assert_in_ranges(metrics)
    assert metrics.flicker == 0.0
    assert metrics.temporal_consistency == pytest.approx(1.0, abs=1e-6)


def test_alternating_black_and_white_flickers_fully(scorer: CLIPScorer) -> None:
    frames = np.zeros((8, 32, 32, 3), dtype=np.uint8)
    frames[1::2] = 255
    metrics = scorer.measure(frames, PROMPT)
    assert_in_ranges(metrics)
    assert metrics.flicker == pytest.approx(1.0, abs=1e-9)
    assert metrics.temporal_consistency is not None and metrics.temporal_consistency < 0.99


def test_single_frame_has_no_temporal_metrics(scorer: CLIPScorer, wan_frames: np.ndarray) -> None:
    metrics = scorer.measure(wan_frames[:1], PROMPT)
    assert metrics.temporal_consistency is None and metrics.flicker is None
    assert metrics.clip_score == pytest.approx(
        float(scorer.image_embeddings(wan_frames[:1])[0] @ scorer.text_embedding(PROMPT)), abs=1e-5
    )


def test_clip_parts_sample_frames_but_flicker_sees_all(scorer: CLIPScorer) -> None:
    frames = noise(40, seed=3)
    frames[5] = 255  # one bright frame, not among the sampled ones
    picked = sample_indices(40, 4)
    assert picked.tolist() == [0, 13, 26, 39]
    metrics = scorer.measure(frames, PROMPT, max_frames=4)
    images = scorer.image_embeddings(frames[picked])
    assert metrics.clip_score == pytest.approx(float((images @ scorer.text_embedding(PROMPT)).mean()), abs=1e-5)
    assert metrics.temporal_consistency == pytest.approx(temporal_consistency(images), abs=1e-6)
    assert metrics.flicker == flicker(frames)
    assert metrics.flicker != flicker(frames[picked])


def test_measure_is_thread_safe(scorer: CLIPScorer, wan_frames: np.ndarray) -> None:
    prompts = [PROMPT, "a blue car driving on a mountain road", "a dog running on the beach", "neon logo"]
    expected = [scorer.measure(wan_frames, p) for p in prompts]
    results: dict[int, QualityMetrics] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = scorer.measure(wan_frames, prompts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(prompts))] == expected


def test_measure_rejects_malformed_frames(scorer: CLIPScorer) -> None:
    with pytest.raises(ValueError, match="uint8"):
        scorer.measure(np.zeros((2, 32, 32, 3), dtype=np.float32), PROMPT)
    with pytest.raises(ValueError, match="shape"):
        scorer.measure(np.zeros((32, 32, 3), dtype=np.uint8), PROMPT)
    with pytest.raises(ValueError, match="shape"):
        scorer.measure(np.zeros((0, 32, 32, 3), dtype=np.uint8), PROMPT)
    with pytest.raises(ValueError, match="max_frames"):
        scorer.measure(noise(2), PROMPT, max_frames=0)


# --- the model-free parts ---------------------------------------------------------------------------------------


def test_flicker_is_the_mean_luminance_step() -> None:
    levels = np.array([0, 51, 51, 255, 0], dtype=np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (5, 4, 6, 3)).copy()
    assert flicker(frames) == pytest.approx((51 + 0 + 204 + 255) / 255 / 4)
    red = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    red[1, ..., 0] = 255  # black -> pure red: Rec. 601 weight of R
    assert flicker(red) == pytest.approx(0.299)
    blue_half = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    blue_half[1, :2, :, 2] = 255  # half the pixels turn blue
    assert flicker(blue_half) == pytest.approx(0.114 / 2)
    assert flicker(frames[:1]) is None


def test_temporal_consistency_of_known_vectors() -> None:
    assert temporal_consistency(np.array([[1.0, 0.0], [3.0, 0.0]])) == pytest.approx(1.0)
    assert temporal_consistency(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(-1.0)
    assert temporal_consistency(np.array([[1.0, 0.0], [0.0, 5.0], [-1.0, 0.0]])) == pytest.approx(0.0)
    assert temporal_consistency(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])) == pytest.approx(
        (1 / np.sqrt(2) + 1) / 2
    )
    assert temporal_consistency(np.ones((1, 4))) is None
    with pytest.raises(ValueError, match="2-D"):
        temporal_consistency(np.ones(4))


def test_sample_indices_are_even_and_include_the_ends() -> None:
    assert sample_indices(10, 16).tolist() == list(range(10))
    assert sample_indices(17, 16).tolist()[0] == 0 and sample_indices(17, 16).tolist()[-1] == 16
    assert len(sample_indices(17, 16)) == 16
    assert sample_indices(5, 1).tolist() == [0]
