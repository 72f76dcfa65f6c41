"""Live-stream evaluation: input validation, real image measurements on generated frames, real
MiniLM transcript features, engagement, and the blended local evaluation."""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from creatormesh.allocation.evaluation import (
    BasicMetrics,
    Evaluation,
    Keyframe,
    Limits,
    LocalEvaluator,
    StreamInput,
    TextEmbedder,
    validate_stream,
)
from creatormesh.allocation.evaluation.engagement import EngagementFeatures
from creatormesh.allocation.evaluation.images import measure_frame, motion_difference, open_image
from creatormesh.allocation.evaluation.text import mattr, repeated_trigram_fraction
from creatormesh.common.embeddings import default_embedder
from creatormesh.common.errors import InvalidArgument

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEED_METRICS = BasicMetrics(
    duration_minutes=90, peak_viewers=1500, average_viewers=1200, total_comments=3200, total_likes=8500
)
NO_METRICS = BasicMetrics(0, 0, 0, 0, 0)


def seed_with(**changes: float) -> BasicMetrics:
    """The seed's example metrics with some fields changed (also to invalid values)."""
    return dataclasses.replace(SEED_METRICS, **changes)  # type: ignore[arg-type]


INFORMATIVE = (
    "Hello chat, welcome back everyone! Today we're going to learn how to bake sourdough bread at home. "
    "First, let's talk about the starter: it's just flour and water that ferments over a few days. "
    "Does anyone here already have a starter? Great question from Maria: how warm should the kitchen be? "
    "Around 24 degrees is ideal, because the yeast and bacteria work faster when it's warm. "
    "Now I'll show you how to fold the dough, watch my hands closely. We stretch one side and fold it over, "
    "then turn the bowl a quarter and repeat. Thanks for the follow, Jake! What flour do you all use? "
    "Whole wheat makes it denser but tastier. Let me know in the comments and I'll answer after the bake."
)
SPAM = " ".join(["Buy now, link in bio, use my discount code.", "Follow me follow me, send gifts now."] * 12)
LECTURE = (
    "The mitochondrion is an organelle found in most eukaryotic cells. It produces adenosine triphosphate "
    "through oxidative phosphorylation. The inner membrane contains the electron transport chain. "
    "Protons are pumped across the membrane, creating a gradient that drives the synthase enzyme. "
    "The process consumes oxygen and produces water as a by-product."
)


# --- generated images ---------------------------------------------------------------------------
def scene(width: int = 1280, height: int = 720, shift: int = 0, seed: int = 0) -> Image.Image:
    """A sharp, well-exposed, colourful frame: colour waves, hard-edged rectangles and fine lines.
    ``shift`` moves the whole content horizontally (camera pan / moving host)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x += shift
    waves = np.stack(
        [128 + 90 * np.sin(x / 40), 128 + 90 * np.sin(y / 30 + 1), 128 + 90 * np.sin((x + y) / 50 + 2)], axis=-1
    )
    image = Image.fromarray(waves.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(60):
        x0 = int(rng.integers(0, max(width - 50, 1))) + shift
        y0 = int(rng.integers(0, max(height - 50, 1)))
        size = int(rng.integers(10, 120))
        draw.rectangle((x0, y0, x0 + size, y0 + size // 2), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    for i in range(0, width, 16):
        draw.line(((i, 0), (i, height)), fill=(235, 235, 235) if i % 32 else (25, 25, 25), width=1)
    return image


def degrade(image: Image.Image) -> Image.Image:
    """Blurred (Gaussian, radius 6), dark (15 % brightness) and grey."""
    grey = image.convert("L").filter(ImageFilter.GaussianBlur(6)).convert("RGB")
    return ImageEnhance.Brightness(grey).enhance(0.15)


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def frames(images: list[Image.Image], step: float = 30.0) -> tuple[Keyframe, ...]:
    return tuple(Keyframe(i * step, encode(im, quality=90)) for i, im in enumerate(images))


def stream(
    keyframes: tuple[Keyframe, ...] = (), transcript: str = "", metrics: BasicMetrics = SEED_METRICS, sid: str = "s1"
) -> StreamInput:
    return StreamInput(stream_id=sid, keyframes=keyframes, transcript=transcript, metrics=metrics)


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return default_embedder()  # loaded once per process, shared with the vision tests


@pytest.fixture(scope="module")
def evaluator(embedder: TextEmbedder) -> LocalEvaluator:
    return LocalEvaluator(embedder)


def field_of(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value.field


# --- validation -------------------------------------------------------------------------------------
SMALL_PNG = encode(scene(64, 36), "PNG")
M = "basic_metrics."
K1 = "keyframes[1].image_data"
NOT_DECODABLE = "not a decodable JPEG/PNG/WebP image"


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (stream(frames([scene(64, 36)]), sid=""), "stream_id", "required"),
        (stream(frames([scene(64, 36)]), sid="x" * 129), "stream_id", "128"),
        (stream((), "   \n"), "keyframes", "nothing to evaluate"),
        (stream((), "hi", metrics=seed_with(average_viewers=1501)), M + "average_viewers", "peak_viewers"),
        (stream((), "hi", metrics=seed_with(duration_minutes=math.nan)), M + "duration_minutes", "finite"),
        (stream((), "hi", metrics=seed_with(duration_minutes=math.inf)), M + "duration_minutes", "finite"),
        (stream((), "hi", metrics=seed_with(duration_minutes=-1.0)), M + "duration_minutes", "[0, 10080]"),
        (stream((), "hi", metrics=seed_with(duration_minutes=20000.0)), M + "duration_minutes", "[0, 10080]"),
        (stream((), "hi", metrics=seed_with(total_comments=-1)), M + "total_comments", ">= 0"),
        (stream((), "hi", metrics=seed_with(total_likes=math.nan)), M + "total_likes", "finite"),
        (stream((), "hi", metrics=seed_with(peak_viewers=-5, average_viewers=-6)), M + "peak_viewers", ">= 0"),
        (stream((Keyframe(-1.0, SMALL_PNG),)), "keyframes[0].timestamp_seconds", ">= 0"),
        (stream((Keyframe(math.nan, SMALL_PNG),)), "keyframes[0].timestamp_seconds", "finite"),
        (stream((Keyframe(10.0, SMALL_PNG), Keyframe(10.0, SMALL_PNG))), "keyframes[1].timestamp_seconds", "increase"),
        (stream((Keyframe(10.0, SMALL_PNG), Keyframe(5.0, SMALL_PNG))), "keyframes[1].timestamp_seconds", "increase"),
        (stream((Keyframe(0.0, SMALL_PNG), Keyframe(1.0, b""))), "keyframes[1].image_data", "empty"),
        (stream((Keyframe(0.0, b"\xff\xd8\xff garbage"),)), "keyframes[0].image_data", NOT_DECODABLE),
        (stream((Keyframe(0.0, b"hello, not an image at all"),)), "keyframes[0].image_data", "not a decodable"),
        (stream((Keyframe(0.0, SMALL_PNG), Keyframe(1.0, encode(scene(64, 36), "GIF")))), K1, "not a decodable"),
        (stream((Keyframe(0.0, encode(scene(64, 36), "BMP")),)), "keyframes[0].image_data", "not a decodable"),
    ],
)  # fmt: skip
def test_validation_names_the_field(bad: StreamInput, field: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_stream(bad)
    assert info.value.field == field
    assert message in str(info.value)


def test_truncated_jpeg_and_png_are_rejected() -> None:
    jpeg = encode(scene(320, 180), quality=90)
    png = encode(scene(320, 180), "PNG")
    for data in (jpeg[: len(jpeg) // 2], jpeg[:-200], png[: len(png) // 2]):
        with pytest.raises(InvalidArgument, match="not a decodable JPEG/PNG/WebP image") as info:
            validate_stream(stream((Keyframe(0.0, SMALL_PNG), Keyframe(5.0, data))))
        assert info.value.field == "keyframes[1].image_data"
    corrupt_png = bytearray(png)
    corrupt_png[len(png) // 2] ^= 0xFF  # flips a byte inside IDAT: CRC mismatch
    assert field_of(lambda: validate_stream(stream((Keyframe(0.0, bytes(corrupt_png)),)))) == "keyframes[0].image_data"


def test_oversized_payload_is_rejected_before_decoding() -> None:
    limits = Limits()
    huge = b"\xff\xd8\xff" + b"\0" * limits.max_image_bytes  # one byte over 8 MiB, never decoded
    with pytest.raises(
        InvalidArgument, match=rf"{limits.max_image_bytes + 3} bytes > max {limits.max_image_bytes}"
    ) as info:
        validate_stream(stream((Keyframe(0.0, SMALL_PNG), Keyframe(1.0, huge))))
    assert info.value.field == "keyframes[1].image_data"
    small_limit = Limits(max_image_bytes=len(SMALL_PNG) - 1)
    assert (
        field_of(lambda: validate_stream(stream((Keyframe(0.0, SMALL_PNG),)), small_limit)) == "keyframes[0].image_data"
    )


def test_too_many_keyframes_and_too_long_transcript() -> None:
    many = tuple(Keyframe(float(i), SMALL_PNG) for i in range(33))
    with pytest.raises(InvalidArgument, match="33 keyframes > max 32") as info:
        validate_stream(stream(many))
    assert info.value.field == "keyframes"
    validate_stream(stream(many[:32]))
    assert field_of(lambda: validate_stream(stream((), "a" * 200_001))) == "transcript"
    validate_stream(stream((), "a" * 200_000))


def test_decompression_bomb_is_rejected_from_the_header() -> None:
    bomb = encode(Image.new("1", (6000, 6000)), "PNG", optimize=True)  # 36 Mpx in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(InvalidArgument, match="decompression bomb guard") as info:
        validate_stream(stream((Keyframe(0.0, bomb),)))
    assert info.value.field == "keyframes[0].image_data"
    with pytest.raises(InvalidArgument, match="pixels > max 100"):
        validate_stream(stream((Keyframe(0.0, SMALL_PNG),)), Limits(max_image_pixels=100))


def test_prefix_and_accepted_inputs() -> None:
    bad = stream((Keyframe(0.0, SMALL_PNG), Keyframe(2.0, b"junk")))
    assert field_of(lambda: validate_stream(bad, prefix="requests[3].")) == "requests[3].keyframes[1].image_data"
    image = scene(64, 36)
    ok = (
        encode(image, quality=80),
        encode(image, "PNG"),
        encode(image, "WEBP", quality=80),
        encode(image.convert("RGBA"), "PNG"),
    )
    validate_stream(stream(tuple(Keyframe(float(i), d) for i, d in enumerate(ok))))
    validate_stream(stream((), "just a transcript", NO_METRICS))  # unset metrics are all zeros


def test_local_evaluator_validates_too(evaluator: LocalEvaluator) -> None:
    assert field_of(lambda: evaluator.evaluate_sync(stream((Keyframe(0.0, b"junk"),)))) == "keyframes[0].image_data"
    assert field_of(lambda: evaluator.evaluate_sync(stream((), ""))) == "keyframes"


# --- image measurements -----------------------------------------------------------------------------
def test_sharp_bright_colourful_frame_beats_blurred_dark_grey_one(evaluator: LocalEvaluator) -> None:
    good_image = scene()
    bad_image = degrade(good_image)
    good = measure_frame(open_image(encode(good_image, quality=90), 4096 * 4096))
    bad = measure_frame(open_image(encode(bad_image, quality=90), 4096 * 4096))
    assert good.laplacian_variance > 50 * bad.laplacian_variance
    assert good.sharpness_score > 0.9 and bad.sharpness_score < 0.1
    assert 0.4 < good.mean_luminance < 0.6 and bad.mean_luminance < 0.15
    assert good.exposure_score > 0.9 and bad.exposure_score < 0.2
    assert good.colourfulness > 59 and bad.colourfulness < 5
    assert good.colourfulness_score > 0.9 and bad.colourfulness_score < 0.1
    assert good.resolution_score == bad.resolution_score == pytest.approx(0.8)

    # Each degradation alone lowers its own measurement.
    blurred = measure_frame(good_image.filter(ImageFilter.GaussianBlur(3)))
    dark = measure_frame(ImageEnhance.Brightness(good_image).enhance(0.2))
    washed = measure_frame(ImageEnhance.Brightness(good_image).enhance(3.0))
    grey = measure_frame(good_image.convert("L"))
    small = measure_frame(good_image.resize((256, 144)))
    assert blurred.sharpness_score < good.sharpness_score
    assert dark.exposure_score < good.exposure_score and washed.exposure_score < good.exposure_score
    assert washed.clipped_fraction > 0.3 and washed.exposure_score == 0.0
    assert grey.colourfulness == pytest.approx(0.0, abs=1e-3)
    assert small.resolution_score < good.resolution_score

    good_eval = evaluator.evaluate_sync(stream(frames([good_image, scene(seed=1)])))
    bad_eval = evaluator.evaluate_sync(stream(frames([bad_image, degrade(scene(seed=1))])))
    assert good_eval.visual_quality > 0.8 and bad_eval.visual_quality < 0.4
    assert good_eval.measurements["sharpness"] > bad_eval.measurements["sharpness"]
    assert good_eval.measurements["exposure"] > bad_eval.measurements["exposure"]
    assert good_eval.measurements["colourfulness"] > bad_eval.measurements["colourfulness"]
    assert good_eval.overall_rating > bad_eval.overall_rating
    reason = next(r.text for r in bad_eval.reasons if r.dimension == "visual_quality")
    assert "sharpness" in reason and "Laplacian variance" in reason


def test_motion_between_keyframes(evaluator: LocalEvaluator) -> None:
    still = [scene(seed=3)] * 4
    moving = [scene(seed=3, shift=40 * i) for i in range(4)]
    a, b = measure_frame(moving[0]), measure_frame(moving[1])
    assert motion_difference(a.thumbnail, a.thumbnail) == 0.0
    assert motion_difference(a.thumbnail, b.thumbnail) > 0.03
    static_eval = evaluator.evaluate_sync(stream(frames(still)))
    moving_eval = evaluator.evaluate_sync(stream(frames(moving)))
    assert static_eval.measurements["motion_mean_abs_diff"] < 0.005
    assert moving_eval.measurements["motion_mean_abs_diff"] > 0.03
    assert moving_eval.measurements["motion"] > 0.7 and static_eval.measurements["motion"] < 0.1
    assert moving_eval.visual_quality > static_eval.visual_quality
    single = evaluator.evaluate_sync(stream(frames(still[:1])))
    assert single.measurements["motion"] == 0.5 and "motion_mean_abs_diff" not in single.measurements


def test_720p_frame_is_measured_quickly() -> None:
    data = encode(scene(), quality=90)
    durations = []
    for _ in range(7):
        started = time.perf_counter()
        measure_frame(open_image(data, 4096 * 4096))
        durations.append(time.perf_counter() - started)
    assert statistics.median(durations) < 0.05  # decode + verify + all measurements


# --- text ------------------------------------------------------------------------------------------------
def test_embeddings_are_normalised_minilm_vectors(embedder: TextEmbedder) -> None:
    vectors = embedder.embed(["How do I bake bread?", "A recipe for sourdough loaves.", "Stock prices fell today."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # related sentences are closer
    assert embedder.embed([]).shape == (0, 384)


def test_lexical_measurements() -> None:
    varied = INFORMATIVE.lower().split()
    looped = ("buy now follow me " * 40).split()
    assert mattr(varied) > 0.7 and mattr(looped) < 0.3
    assert repeated_trigram_fraction(varied) < 0.05 and repeated_trigram_fraction(looped) > 0.5
    assert mattr([]) == 0.0 and repeated_trigram_fraction(["a", "b"]) == 0.0


def test_informative_engaging_transcript_beats_repetitive_spam(evaluator: LocalEvaluator) -> None:
    good = evaluator.evaluate_sync(stream((), INFORMATIVE))
    spam = evaluator.evaluate_sync(stream((), SPAM))
    assert good.content_value > spam.content_value + 0.25
    assert good.measurements["semantic_value"] > 0.6 and spam.measurements["semantic_value"] < 0.1
    assert good.measurements["semantic_margin"] > 0 > spam.measurements["semantic_margin"]
    assert good.measurements["lexical_diversity"] > spam.measurements["lexical_diversity"]
    assert good.measurements["originality"] > spam.measurements["originality"]
    assert good.host_performance > spam.host_performance
    reason = next(r.text for r in spam.reasons if r.dimension == "content_value")
    assert "spam" in reason and "semantic value" in reason


def test_talking_to_the_audience_lifts_host_performance(evaluator: LocalEvaluator) -> None:
    interactive = evaluator.evaluate_sync(stream((), INFORMATIVE))
    lecture = evaluator.evaluate_sync(stream((), LECTURE))
    hesitant = evaluator.evaluate_sync(stream((), "um so uh today um we uh talk about um bread uh yeah um"))
    assert interactive.measurements["questions_per_100_words"] > 1.0
    assert interactive.measurements["greetings_per_100_words"] > 0.5
    assert lecture.measurements["questions_per_100_words"] == 0.0
    assert interactive.measurements["audience_interaction"] > 0.7 and lecture.measurements["audience_interaction"] < 0.2
    assert interactive.host_performance > lecture.host_performance
    assert hesitant.measurements["fluency"] < 0.1 < lecture.measurements["fluency"]


def test_speech_rate_is_relative_to_the_duration(evaluator: LocalEvaluator) -> None:
    words = len(INFORMATIVE.split())
    lively = evaluator.evaluate_sync(stream((), INFORMATIVE, seed_with(duration_minutes=words / 140)))
    sparse = evaluator.evaluate_sync(stream((), INFORMATIVE, seed_with(duration_minutes=words / 10)))
    assert lively.measurements["words_per_minute"] == pytest.approx(140, rel=0.05)
    assert lively.measurements["speech_rate"] == 1.0 and sparse.measurements["speech_rate"] < 0.3
    unknown = evaluator.evaluate_sync(stream((), INFORMATIVE, NO_METRICS))
    assert "words_per_minute" not in unknown.measurements


# --- engagement ------------------------------------------------------------------------------------------
def test_engagement_is_monotonic_in_comments_likes_and_retention() -> None:
    def score(**changes: float) -> float:
        return EngagementFeatures.of(seed_with(**changes)).score

    comments = [score(total_comments=c) for c in (0, 100, 1000, 3200, 10_000, 100_000)]
    likes = [score(total_likes=n) for n in (0, 500, 8500, 50_000, 500_000)]
    retention = [score(average_viewers=a) for a in (100, 300, 600, 1200, 1500)]
    for series in (comments, likes, retention):
        assert all(a <= b for a, b in itertools.pairwise(series))
        assert series[-1] > series[0]
    seed = EngagementFeatures.of(SEED_METRICS)
    assert seed.comments_per_viewer_minute == pytest.approx(3200 / (1200 * 90))
    assert seed.retention == pytest.approx(0.8)
    assert 0.6 < seed.score < 0.9
    assert not EngagementFeatures.of(NO_METRICS).available and EngagementFeatures.of(NO_METRICS).score == 0.5


def test_engagement_raises_content_value_and_host_performance(evaluator: LocalEvaluator) -> None:
    quiet = evaluator.evaluate_sync(stream((), INFORMATIVE, seed_with(total_comments=10, total_likes=10)))
    busy = evaluator.evaluate_sync(stream((), INFORMATIVE, seed_with(total_comments=20_000, total_likes=50_000)))
    assert busy.content_value > quiet.content_value
    assert busy.host_performance > quiet.host_performance
    assert busy.overall_rating > quiet.overall_rating


# --- the whole evaluation -------------------------------------------------------------------------------
def check_evaluation(e: Evaluation) -> None:
    for name in ("content_value", "visual_quality", "host_performance", "overall_rating"):
        assert 0.0 <= getattr(e, name) <= 1.0, name
    assert e.evaluator == "local" and not e.fallback and e.version
    assert {r.dimension for r in e.reasons} >= {"content_value", "visual_quality", "host_performance", "overall_rating"}
    assert all(math.isfinite(v) for v in e.measurements.values())


def test_missing_parts_are_neutral(evaluator: LocalEvaluator) -> None:
    transcript_only = evaluator.evaluate_sync(stream((), INFORMATIVE))
    check_evaluation(transcript_only)
    assert transcript_only.visual_quality == 0.5
    assert any("no keyframes" in r.text for r in transcript_only.reasons if r.dimension == "visual_quality")

    frames_only = evaluator.evaluate_sync(stream(frames([scene(), scene(shift=30)]), "", NO_METRICS))
    check_evaluation(frames_only)
    assert any("empty transcript" in r.text for r in frames_only.reasons)
    assert any("no basic metrics" in r.text for r in frames_only.reasons)
    assert frames_only.content_value == pytest.approx(0.5)
    assert frames_only.host_performance == pytest.approx(0.5)
    assert frames_only.visual_quality > 0.8


async def test_full_evaluation_async_and_fast(evaluator: LocalEvaluator) -> None:
    sentences = INFORMATIVE.split(". ")
    rng = np.random.default_rng(7)
    transcript = ". ".join(sentences[int(i)] for i in rng.integers(0, len(sentences), 400))
    transcript = " ".join(transcript.split()[:2000])
    keyframes = frames([scene(seed=i, shift=20 * i) for i in range(8)], step=600.0)
    s = stream(keyframes, transcript)
    await evaluator.evaluate(s)  # warm-up (anchors)
    started = time.perf_counter()
    result = await evaluator.evaluate(s)
    elapsed = time.perf_counter() - started
    check_evaluation(result)
    assert result.stream_id == "s1" and result.measurements["keyframes"] == 8
    assert result.measurements["transcript_words"] == 2000
    assert elapsed < 3.0
    expected = 0.35 * result.content_value + 0.25 * result.visual_quality + 0.25 * result.host_performance
    expected += 0.15 * result.measurements["engagement"]
    assert result.overall_rating == pytest.approx(expected)
