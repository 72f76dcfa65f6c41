"""Visual features on real media made by ffmpeg (sample_media), and the local key-frame encoder.

tests/data/face.jpg is a 128 px crop of NASA's public-domain portrait of astronaut Eileen Collins (as shipped in
scikit-image's data as astronaut.png), used because a frontal face cannot be drawn convincingly from code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.sample_media import make_image, make_video
from creatormesh.viral_scoring.visual import (
    VISUAL_DIM,
    VISUAL_NAMES,
    KeyframeEncoder,
    build_tiny_clip,
    visual_features,
)

FACE = Path(__file__).parent / "data" / "face.jpg"


def idx(name: str) -> int:
    return VISUAL_NAMES.index(name)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("visual")
    make_video(root / "cuts.mp4", cuts=3, with_audio=False)
    make_video(root / "gray.mp4", pattern="color=c=gray", with_audio=False)
    make_video(root / "moving.mp4", pattern="testsrc2", with_audio=False)
    make_video(root / "white.mp4", pattern="color=c=white", with_audio=False)
    make_video(root / "black.mp4", pattern="color=c=black", with_audio=False)
    for kind in ("bright", "dark", "grey", "colourful"):
        make_image(root / f"{kind}.png", kind=kind)
    return root


@pytest.fixture(scope="module")
def vectors(media: Path) -> dict[str, np.ndarray]:
    out = {}
    for name in ("cuts", "gray", "moving", "white", "black"):
        vec = visual_features(media / f"{name}.mp4")
        assert vec is not None, name
        out[name] = vec
    return out


def test_vector_shape_and_range(vectors: dict[str, np.ndarray]) -> None:
    assert VISUAL_DIM == len(VISUAL_NAMES) == len(set(VISUAL_NAMES))
    assert 10 <= VISUAL_DIM <= 16
    for vec in vectors.values():
        assert vec.shape == (VISUAL_DIM,)
        assert vec.dtype == np.float32
        assert np.isfinite(vec).all()
        assert (vec >= 0).all() and (vec <= 1).all()
        assert vec[idx("from_video")] == 1.0


def test_scene_cuts_are_counted(vectors: dict[str, np.ndarray]) -> None:
    cuts, static, moving = vectors["cuts"], vectors["gray"], vectors["moving"]
    assert cuts[idx("cut_rate")] > static[idx("cut_rate")] == 0.0
    assert cuts[idx("cut_count")] == pytest.approx(0.3)  # exactly the 3 cuts made
    assert moving[idx("cut_count")] == 0.0  # steady motion is not a cut
    assert cuts[idx("hook_change")] > static[idx("hook_change")]


def test_motion(vectors: dict[str, np.ndarray]) -> None:
    assert vectors["moving"][idx("motion")] > 0.05
    assert vectors["gray"][idx("motion")] == 0.0
    assert vectors["moving"][idx("hook_motion")] > vectors["gray"][idx("hook_motion")]


def test_brightness_and_duration(vectors: dict[str, np.ndarray]) -> None:
    assert vectors["white"][idx("brightness")] > 0.9
    assert vectors["black"][idx("brightness")] < 0.1
    assert vectors["gray"][idx("duration")] == pytest.approx(np.log1p(4.0) / 5, abs=0.02)


def test_keyframes_only(media: Path) -> None:
    bright = visual_features(keyframes=[media / "bright.png"])
    dark = visual_features(keyframes=[(media / "dark.png").read_bytes()])
    colourful = visual_features(keyframes=[media / "colourful.png"])
    grey = visual_features(keyframes=[media / "grey.png"])
    assert bright is not None and dark is not None and colourful is not None and grey is not None
    assert bright[idx("brightness")] > 0.8 and dark[idx("brightness")] < 0.2
    assert colourful[idx("colourfulness")] > 0.5 and grey[idx("colourfulness")] < 0.01
    assert colourful[idx("saturation")] > grey[idx("saturation")]
    assert bright[idx("from_video")] == 0.0 and bright[idx("duration")] == 0.0
    mixed = visual_features(keyframes=[media / "bright.png", media / "dark.png", media / "colourful.png"])
    assert mixed is not None and mixed[idx("cut_count")] == pytest.approx(0.2)


def test_faces(media: Path, vectors: dict[str, np.ndarray]) -> None:
    face = visual_features(keyframes=[FACE])
    assert face is not None
    assert face[idx("face_share")] == 1.0
    assert 0.05 < face[idx("face_area")] < 0.9
    assert vectors["moving"][idx("face_share")] == 0.0
    half = visual_features(keyframes=[FACE, media / "grey.png"])
    assert half is not None and half[idx("face_share")] == pytest.approx(0.5)


def test_nothing_usable_is_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    assert visual_features() is None
    with caplog.at_level(logging.WARNING):
        assert visual_features(garbage) is None
        assert visual_features(keyframes=[b"\x89PNG broken"]) is None
        assert visual_features(tmp_path / "missing.mp4") is None
    assert caplog.records


def test_undecodable_video_falls_back_to_keyframes(tmp_path: Path, media: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    vec = visual_features(garbage, keyframes=[media / "bright.png"])
    assert vec is not None and vec[idx("from_video")] == 0.0 and vec[idx("brightness")] > 0.8


def test_max_frames_bounds_analysis(media: Path) -> None:
    one = visual_features(media / "moving.mp4", max_frames=1)
    assert one is not None and one.shape == (VISUAL_DIM,)


def test_keyframe_encoder_on_tiny_clip(tmp_path: Path) -> None:
    model_dir = build_tiny_clip(tmp_path / "clip")
    encoder = KeyframeEncoder.load(model_dir)
    assert encoder.dim == 16
    rng = np.random.default_rng(0)
    images = [
        np.zeros((120, 160, 3), dtype=np.uint8),
        np.full((50, 40, 3), 200, dtype=np.uint8),
        rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8),
    ]
    emb = encoder.encode(images)
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[2])  # different images, different embeddings
    np.testing.assert_allclose(encoder.encode(images[:1]), emb[:1], atol=1e-5)  # deterministic (eval mode)
    assert encoder.encode([]).shape == (0, 16)


def test_keyframe_encoder_on_tiny_vit(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48, image_size=32, patch_size=8
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    encoder = KeyframeEncoder.load(tmp_path / "vit")
    emb = encoder.encode([np.full((64, 64, 3), 10, dtype=np.uint8)])
    assert emb.shape == (1, 24) == (1, encoder.dim)
    assert np.linalg.norm(emb[0]) == pytest.approx(1.0, abs=1e-5)


def test_keyframe_encoder_rejects_other_models(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="neither CLIP nor ViT"):
        KeyframeEncoder.load(tmp_path)


def test_a_configured_keyframe_encoder_fills_the_encoder_part_of_the_visual_input(tmp_path: Path) -> None:
    from creatormesh.viral_scoring.features import VISUAL_DIM as INPUT_DIM
    from creatormesh.viral_scoring.features import featurize
    from creatormesh.viral_scoring.items import Item, Media
    from creatormesh.viral_scoring.visual import ENCODER_DIM, keyframe_embedding

    encoder = KeyframeEncoder.load(build_tiny_clip(tmp_path / "clip"))
    video = make_video(tmp_path / "v.mp4", seconds=1.0, with_audio=False)
    embedded = keyframe_embedding(encoder, video)
    assert embedded is not None and embedded.shape == (ENCODER_DIM,) and np.isfinite(embedded).all()
    assert keyframe_embedding(encoder) is None
    item = Item("x", title="t", media=Media(video=video))
    plain = featurize([item], embed=None, media=True)
    encoded = featurize([item], embed=None, media=True, keyframe_encoder=encoder)
    assert plain.visual.shape == encoded.visual.shape == (1, INPUT_DIM)
    np.testing.assert_array_equal(plain.visual[0, :VISUAL_DIM], encoded.visual[0, :VISUAL_DIM])
    assert not plain.visual[0, VISUAL_DIM:].any()
    np.testing.assert_allclose(encoded.visual[0, VISUAL_DIM:], embedded, rtol=1e-5)
