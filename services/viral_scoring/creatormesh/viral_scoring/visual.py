"""Visual measurements of a post's video or key frames, and an optional local CLIP/ViT key-frame encoder.

A video is decoded with PyAV into a dense stream of frames downscaled to 160 px wide, at most `DENSE_FPS` per
second (fewer for long videos, at most `MAX_DENSE` frames); motion, cuts and the hook come from that stream, and the
appearance measures from at most `max_frames` frames picked uniformly from it. Key frames (JPEG/PNG bytes or paths)
are used when no video is given or it cannot be decoded. Features, in order (roughly in [0, 1]):

- brightness: mean luma / 255.
- contrast: mean per-frame std of luma / 128, clipped to 1.
- saturation: mean HSV saturation (max - min) / max.
- colourfulness: mean Hasler-Süsstrunk colourfulness / 150, clipped to 1.
- sharpness: log1p(variance of the luma Laplacian) / 10, clipped to 1.
- motion: mean absolute difference of consecutive dense frames (cuts excluded) / 64, clipped to 1.
- motion_peak: 90th percentile of those differences / 64, clipped to 1.
- cut_rate: scene cuts per second / 2, clipped to 1 (key frames: share of consecutive pairs that are cuts).
- cut_count: number of cuts / 10, clipped to 1.
- face_share: share of analysed frames with a frontal face (OpenCV Haar cascade shipped in opencv-python-headless
  4.x; 0 when OpenCV or the cascade is missing).
- face_area: area of the largest face / frame area, over the analysed frames.
- hook_motion: mean frame difference within the first 3 s / 64, clipped to 1 (0 for key frames).
- hook_change: mean absolute difference between the first frame and the frame at 3 s (or the last) / 64, clipped.
- duration: log1p(seconds) / 5 (0 for key frames).
- from_video: 1 when measured on a video, 0 when on key frames.

A cut is a dense-frame difference above `CUT_MIN` (/255 units) that is also `CUT_RATIO` times the median of its
neighbours' differences, so steady fast motion is not taken for cuts.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

WIDTH = 160
DENSE_FPS = 5.0
MAX_DENSE = 300
HOOK_SECONDS = 3.0
MOTION_SCALE = 64.0 / 255.0
CUT_MIN = 0.12
CUT_RATIO = 3.0
CUT_WINDOW = 4

VISUAL_NAMES: tuple[str, ...] = (
    "brightness",
    "contrast",
    "saturation",
    "colourfulness",
    "sharpness",
    "motion",
    "motion_peak",
    "cut_rate",
    "cut_count",
    "face_share",
    "face_area",
    "hook_motion",
    "hook_change",
    "duration",
    "from_video",
)
VISUAL_DIM: int = len(VISUAL_NAMES)


def _resize(rgb: np.ndarray, width: int = WIDTH) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    height = max(2, round(h * width / max(w, 1)))
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


def _decode_video(video: Path) -> tuple[list[np.ndarray], list[float], float] | None:
    """Dense frames (RGB uint8, WIDTH wide), their times and the duration; None when undecodable."""
    import av

    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                log.warning("no video stream in %s", video)
                return None
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = container.duration / 1e6 if container.duration else 0.0
            step = 1.0 / DENSE_FPS if duration <= 0 else max(1.0 / DENSE_FPS, duration / MAX_DENSE)
            fps = float(stream.average_rate) if stream.average_rate else 25.0
            next_time = -1.0
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / fps
                if len(frames) >= MAX_DENSE:
                    break
                if t + 1e-6 < next_time:
                    continue
                next_time = (next_time if next_time >= 0 else t) + step
                height = max(2, round(frame.height * WIDTH / max(frame.width, 1) / 2) * 2)
                frames.append(frame.to_ndarray(width=WIDTH, height=height, format="rgb24", interpolation="AREA"))
                times.append(t)
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        log.warning("video %s could not be decoded: %s", video, exc)
        return None
    if not frames:
        log.warning("video %s has no decodable frames", video)
        return None
    duration = max(duration, times[-1] - times[0])
    return frames, times, duration


def _decode_keyframes(keyframes: Sequence[bytes | Path]) -> list[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    frames: list[np.ndarray] = []
    for item in keyframes:
        try:
            source = io.BytesIO(item) if isinstance(item, bytes | bytearray) else Path(item)
            with Image.open(source) as image:
                frames.append(_resize(np.asarray(image.convert("RGB"))))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            log.warning("key frame could not be decoded: %s", exc)
    return frames


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        b = _resize(b, a.shape[1])[: a.shape[0]]
        if b.shape != a.shape:
            return float(np.abs(a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))).mean() / 255.0)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() / 255.0)


def _cuts(diffs: np.ndarray, adaptive: bool) -> np.ndarray:
    """Boolean mask over diffs: which transitions are scene cuts."""
    if diffs.size == 0:
        return np.zeros(0, dtype=bool)
    above = diffs > CUT_MIN
    if not adaptive:
        return above
    padded = np.pad(diffs, CUT_WINDOW, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * CUT_WINDOW + 1).copy()
    windows[:, CUT_WINDOW] = np.nan
    with np.errstate(all="ignore"):
        baseline = np.nanmedian(windows, axis=1)
    baseline = np.nan_to_num(baseline, nan=0.0)
    return np.asarray(above & (diffs > CUT_RATIO * baseline), dtype=bool)


@functools.cache
def _face_cascade() -> Any:
    try:
        import cv2
    except ImportError:
        log.info("OpenCV is not installed: face features are 0")
        return None
    if not hasattr(cv2, "CascadeClassifier"):
        log.info("this OpenCV build has no Haar cascades (use opencv-python-headless<5): face features are 0")
        return None
    cascades = Path(getattr(cv2, "data").haarcascades)  # noqa: B009 - cv2.data is missing from the stubs
    cascade = cv2.CascadeClassifier(str(cascades / "haarcascade_frontalface_default.xml"))
    return None if cascade.empty() else cascade


def _faces(frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """(share of frames with a face, largest face area fraction)."""
    cascade = _face_cascade()
    if cascade is None or not frames:
        return 0.0, 0.0
    import cv2

    hits, largest = 0, 0.0
    for rgb in frames:
        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
        if len(found):
            hits += 1
            area = max(int(w) * int(h) for _, _, w, h in found) / float(grey.shape[0] * grey.shape[1])
            largest = max(largest, area)
    return hits / len(frames), largest


def _appearance(frames: Sequence[np.ndarray]) -> list[float]:
    """brightness, contrast, saturation, colourfulness, sharpness over frames of any sizes."""
    rows = []
    for rgb in frames:
        f = rgb.astype(np.float32)
        r, g, b = f[..., 0], f[..., 1], f[..., 2]
        luma = 0.299 * r + 0.587 * g + 0.114 * b
        high, low = f.max(axis=2), f.min(axis=2)
        saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0).mean()
        rg, yb = r - g, 0.5 * (r + g) - b
        colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
        rows.append([luma.mean() / 255.0, luma.std() / 128.0, saturation, colourful / 150.0, np.log1p(lap.var()) / 10])
    return [float(v) for v in np.clip(np.asarray(rows).mean(axis=0), 0.0, 1.0)]


def _pick(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    if len(frames) <= count:
        return list(frames)
    return [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]


def _scaled(value: float) -> float:
    return float(np.clip(value / MOTION_SCALE, 0.0, 1.0))


def visual_features(
    video: Path | None = None, keyframes: Sequence[bytes | Path] = (), *, max_frames: int = 32
) -> np.ndarray | None:
    """float32 [VISUAL_DIM] measurements (see module doc); None when there is nothing usable."""
    decoded = _frames(video, keyframes)
    return None if decoded is None else _measure(*decoded, max_frames=max_frames)


def _frames(
    video: Path | None, keyframes: Sequence[bytes | Path]
) -> tuple[list[np.ndarray], list[float], float, bool] | None:
    """(frames, times, duration, from_video) of the video, else of the key frames; None when nothing decodes."""
    decoded = _decode_video(video) if video is not None else None
    if decoded is not None:
        frames, times, duration = decoded
    else:
        frames, times, duration = _decode_keyframes(keyframes), [], 0.0
    if not frames:
        if video is not None or keyframes:
            log.warning("no usable visual input (video=%s, %d key frames)", video, len(keyframes))
        return None
    return frames, times, duration, decoded is not None


def _measure(
    frames: list[np.ndarray], times: list[float], duration: float, from_video: bool, *, max_frames: int
) -> np.ndarray:
    diffs = np.asarray([_diff(a, b) for a, b in zip(frames[1:], frames[:-1], strict=True)], dtype=np.float64)
    cut_mask = _cuts(diffs, adaptive=from_video)
    steady = diffs[~cut_mask]
    n_cuts = int(cut_mask.sum())
    if from_video:
        cut_rate = n_cuts / max(duration, 1.0) / 2.0
        early = diffs[np.asarray(times[1:]) <= HOOK_SECONDS] if diffs.size else diffs
        hook_motion = _scaled(float(early.mean())) if early.size else 0.0
        at_hook = int(np.searchsorted(np.asarray(times), times[0] + HOOK_SECONDS).clip(0, len(frames) - 1))
        hook_change = _scaled(_diff(frames[0], frames[at_hook]))
    else:
        cut_rate = n_cuts / max(len(frames) - 1, 1)
        hook_motion = hook_change = 0.0
    picked = _pick(frames, max(1, max_frames))
    face_share, face_area = _faces(picked)
    vector = [
        *_appearance(picked),
        _scaled(float(steady.mean())) if steady.size else 0.0,
        _scaled(float(np.percentile(steady, 90))) if steady.size else 0.0,
        float(np.clip(cut_rate, 0.0, 1.0)),
        min(n_cuts, 10) / 10.0,
        face_share,
        face_area,
        hook_motion,
        hook_change,
        float(np.log1p(duration) / 5.0),
        1.0 if from_video else 0.0,
    ]
    return np.nan_to_num(np.asarray(vector, dtype=np.float32))


class KeyframeEncoder:
    """A CLIP/ViT image encoder loaded from a local directory (transformers CLIPVisionModelWithProjection or
    ViTModel, whichever config the directory has), for when an operator configures one."""

    def __init__(self, model: torch.nn.Module, kind: str, size: int, crop: int, mean: np.ndarray, std: np.ndarray):
        self._model = model.eval()
        self._kind = kind
        self._size = size
        self._crop = crop
        self._mean = mean.astype(np.float32)
        self._std = std.astype(np.float32)
        config = getattr(model, "config", None)
        dim = getattr(config, "projection_dim", None) if kind == "clip" else getattr(config, "hidden_size", None)
        self._dim = int(dim or 0)

    @classmethod
    def load(cls, model_dir: Path) -> KeyframeEncoder:
        """Load from `model_dir` (config.json + weights + optional preprocessor_config.json), offline."""
        config = json.loads((model_dir / "config.json").read_text())
        model_type = str(config.get("model_type", ""))
        model: torch.nn.Module
        if model_type.startswith("clip"):
            from transformers import CLIPVisionModelWithProjection

            model, kind = CLIPVisionModelWithProjection.from_pretrained(model_dir, local_files_only=True), "clip"
            vision = config.get("vision_config", config)
        elif model_type == "vit":
            from transformers import ViTModel

            model, kind = ViTModel.from_pretrained(model_dir, local_files_only=True, add_pooling_layer=False), "vit"
            vision = config
        else:
            raise ValueError(f"{model_dir}: model_type {model_type!r} is neither CLIP nor ViT")
        image_size = int(vision.get("image_size", 224))
        pre_path = model_dir / "preprocessor_config.json"
        pre: dict[str, Any] = json.loads(pre_path.read_text()) if pre_path.exists() else {}
        size_cfg = pre.get("size", {})
        size = int(size_cfg.get("shortest_edge", size_cfg.get("height", image_size)) if size_cfg else image_size)
        crop_cfg = pre.get("crop_size", {})
        crop = int(crop_cfg.get("height", image_size)) if crop_cfg and pre.get("do_center_crop", True) else size
        default_mean = [0.48145466, 0.4578275, 0.40821073] if kind == "clip" else [0.5, 0.5, 0.5]
        default_std = [0.26862954, 0.26130258, 0.27577711] if kind == "clip" else [0.5, 0.5, 0.5]
        mean = np.asarray(pre.get("image_mean", default_mean), dtype=np.float32)
        std = np.asarray(pre.get("image_std", default_std), dtype=np.float32)
        return cls(model, kind, size, crop, mean, std)

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self._dim

    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("RGB")
        w, h = image.size
        scale = self._size / min(w, h)
        image = image.resize(
            (max(self._crop, round(w * scale)), max(self._crop, round(h * scale))), Image.Resampling.BICUBIC
        )
        left, top = (image.size[0] - self._crop) // 2, (image.size[1] - self._crop) // 2
        image = image.crop((left, top, left + self._crop, top + self._crop))
        pixels = (np.asarray(image, dtype=np.float32) / 255.0 - self._mean) / self._std
        return pixels.transpose(2, 0, 1)

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """[N, dim] L2-normalised embeddings of RGB uint8 HxWx3 images."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.from_numpy(np.stack([self._prepare(img) for img in images]))
        with torch.inference_mode():
            out = self._model(pixel_values=batch)
            if self._kind == "clip":
                emb = out.image_embeds
            else:
                emb = (
                    out.pooler_output
                    if getattr(out, "pooler_output", None) is not None
                    else out.last_hidden_state[:, 0]
                )
            emb = torch.nn.functional.normalize(emb.float(), dim=-1)
        return np.asarray(emb.numpy(), dtype=np.float32)


#: width of the key-frame encoder part of the model's visual input, whatever the encoder's own size
ENCODER_DIM = 16


@functools.cache
def _projection(dim: int) -> np.ndarray:
    """A fixed random projection dim -> ENCODER_DIM (Johnson-Lindenstrauss: distances kept up to a small factor),
    the same in every process, so the model's input width does not depend on which encoder is configured."""
    rng = np.random.default_rng(20261203)
    return np.asarray(rng.normal(size=(dim, ENCODER_DIM)) / np.sqrt(ENCODER_DIM), dtype=np.float32)


def keyframe_embedding(
    encoder: KeyframeEncoder, video: Path | None = None, keyframes: Sequence[bytes | Path] = (), *, frames: int = 4
) -> np.ndarray | None:
    """float32 [ENCODER_DIM]: the mean encoder embedding of up to ``frames`` frames picked uniformly from the video
    (or the key frames), projected to ENCODER_DIM; None when there is nothing usable."""
    decoded = _frames(video, keyframes)
    return None if decoded is None else _embed(encoder, decoded[0], frames)


def _embed(encoder: KeyframeEncoder, images: list[np.ndarray], frames: int) -> np.ndarray | None:
    if encoder.dim == 0:
        return None
    mean = encoder.encode(_pick(images, frames)).mean(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-8)
    return np.asarray(mean @ _projection(encoder.dim), dtype=np.float32)


def visual_input(
    video: Path | None, keyframes: Sequence[bytes | Path], encoder: KeyframeEncoder | None = None
) -> np.ndarray | None:
    """float32 [VISUAL_DIM + ENCODER_DIM], the model's visual input: the measurements, then the key-frame
    encoder's projected embedding (zeros without an encoder), from one decoding; None when nothing decodes."""
    decoded = _frames(video, keyframes)
    if decoded is None:
        return None
    embedded = _embed(encoder, decoded[0], 4) if encoder is not None else None
    extra = embedded if embedded is not None else np.zeros(ENCODER_DIM, dtype=np.float32)
    return np.concatenate([_measure(*decoded, max_frames=32), extra])


def build_tiny_clip(out_dir: Path) -> Path:
    """Save a tiny randomly initialised CLIP vision model and its preprocessor config (no download), for tests."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    CLIPVisionModelWithProjection(config).save_pretrained(out_dir)
    preprocessor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 32},
        "do_center_crop": True,
        "crop_size": {"height": 32, "width": 32},
        "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    }
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return out_dir
