"""Image decoding and the per-keyframe measurements of the local evaluator (Pillow + numpy).

Every measurement is taken on a working copy whose longer side is at most
:data:`ANALYSIS_MAX_SIDE` pixels (integer box reduction), so the numbers do not
depend on the upload size and a 1280x720 frame costs a few milliseconds. Only the
resolution measurement looks at the original size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from creatormesh.allocation.evaluation.scoring import log_ramp, piecewise, ramp

FORMATS = ("JPEG", "PNG", "WEBP")
"""Accepted encodings (Pillow format names)."""
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

ANALYSIS_MAX_SIDE = 640
"""Longer side of the working copy the sharpness/exposure/colour measurements use."""
MOTION_SIZE = (64, 36)
"""Grey thumbnail size for the motion measurement (aspect ratio is ignored on purpose)."""

# Reference points (raw value -> score). See the docstring of each score.
SHARPNESS_ZERO_AT = 20.0
SHARPNESS_ONE_AT = 500.0
LUMINANCE_IDEAL_BAND = 0.15
LUMINANCE_ZERO_AT = 0.45
CLIPPED_OK = 0.02
CLIPPED_ZERO_AT = 0.30
CLIP_LOW, CLIP_HIGH = 5, 250
COLOURFULNESS_POINTS = ((0.0, 0.0), (15.0, 0.25), (33.0, 0.55), (45.0, 0.75), (59.0, 0.9), (82.0, 1.0))
RESOLUTION_POINTS = ((144.0, 0.0), (360.0, 0.4), (720.0, 0.8), (1080.0, 1.0))
MOTION_POINTS = ((0.0, 0.0), (0.01, 0.2), (0.04, 0.8), (0.08, 1.0), (0.30, 1.0), (0.60, 0.6))


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; the message says why (no field name)."""


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` fully and return the image, or raise :class:`ImageRejected`.

    Only JPEG, PNG and WebP are tried. The pixel count is checked from the header
    before any pixel is decoded (decompression-bomb guard); then the file is verified
    (PNG chunk CRCs) and decoded completely, so truncated or corrupt data is caught
    here rather than half-way through an evaluation.
    """
    if not data:
        raise ImageRejected("is empty")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"{width}x{height} = {width * height} pixels > max {max_pixels} (decompression bomb guard)"
                )
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        image.load()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb: {exc}") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error...
        raise ImageRejected(f"not a decodable JPEG/PNG/WebP image ({type(exc).__name__}: {exc})") from exc
    if image.width < 1 or image.height < 1:
        raise ImageRejected("not a decodable JPEG/PNG/WebP image (no pixels)")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB view of any decoded mode; 16-bit grey (PNG) is scaled, not clipped, to 0..255."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):
        grey = np.asarray(image, dtype=np.float32) * (255.0 / 65535.0)
        return Image.fromarray(grey.clip(0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def working_copy(image: Image.Image) -> Image.Image:
    """RGB copy with the longer side reduced to at most :data:`ANALYSIS_MAX_SIDE` (integer box filter)."""
    rgb = to_rgb(image)
    factor = math.ceil(max(rgb.size) / ANALYSIS_MAX_SIDE)
    return rgb.reduce(factor) if factor > 1 else rgb


@dataclass(frozen=True)
class FrameMeasurements:
    """Raw measurements of one keyframe; the ``*_score`` properties map them to [0, 1]."""

    width: int
    height: int
    laplacian_variance: float
    mean_luminance: float
    clipped_fraction: float
    colourfulness: float
    thumbnail: NDArray[np.float32] = field(repr=False, compare=False)
    """Grey :data:`MOTION_SIZE` thumbnail in 0..1 for :func:`motion_difference`."""

    @property
    def sharpness_score(self) -> float:
        """Variance of the 4-neighbour Laplacian of the grey working copy (0..255 scale), on a
        log scale: 0 at <= 20 (blurred/out of focus), 1 at >= 500 (crisp edges and texture)."""
        return log_ramp(self.laplacian_variance, SHARPNESS_ZERO_AT, SHARPNESS_ONE_AT)

    @property
    def exposure_score(self) -> float:
        """Level x clipping, both must be good. Level: closeness of the mean luminance (0..1) to
        mid-grey - 1 within 0.5 +- 0.15, 0 at 0.5 +- 0.45 (nearly black or white). Clipping: 1 when at
        most 2 % of the pixels are crushed (<= 5 of 255) or blown (>= 250), 0 at 30 %."""
        level = ramp(abs(self.mean_luminance - 0.5), LUMINANCE_ZERO_AT, LUMINANCE_IDEAL_BAND)
        clipping = ramp(self.clipped_fraction, CLIPPED_ZERO_AT, CLIPPED_OK)
        return level * clipping

    @property
    def colourfulness_score(self) -> float:
        """Hasler & Suesstrunk (2003) colourfulness M through the paper's perceptual anchors:
        0 not colourful, 15 slightly (0.25), 33 moderately (0.55), 45 averagely (0.75),
        59 quite (0.9), >= 82 highly colourful (1.0)."""
        return piecewise(self.colourfulness, COLOURFULNESS_POINTS)

    @property
    def resolution_score(self) -> float:
        """Shorter side of the original image: 0 at <= 144 px, 0.4 at 360, 0.8 at 720, 1 at >= 1080."""
        return piecewise(float(min(self.width, self.height)), RESOLUTION_POINTS)


def laplacian_variance(grey: NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian (kernel [[0,1,0],[1,-4,1],[0,1,0]]) over the interior."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(lap.var())


def colourfulness(rgb: NDArray[np.float32]) -> float:
    """Hasler-Suesstrunk M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with
    rg = R - G and yb = (R + G)/2 - B on 0..255 channels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean())))


def measure_frame(image: Image.Image) -> FrameMeasurements:
    """All per-frame measurements of a decoded image (see :class:`FrameMeasurements`)."""
    small = working_copy(image)
    grey_u8 = np.asarray(small.convert("L"))
    grey = grey_u8.astype(np.float32)
    clipped = np.count_nonzero((grey_u8 <= CLIP_LOW) | (grey_u8 >= CLIP_HIGH)) / grey_u8.size
    return FrameMeasurements(
        width=image.width,
        height=image.height,
        laplacian_variance=laplacian_variance(grey),
        mean_luminance=float(grey.mean()) / 255.0,
        clipped_fraction=float(clipped),
        colourfulness=colourfulness(np.asarray(small, dtype=np.float32)),
        thumbnail=motion_thumbnail(small),
    )


def motion_thumbnail(image: Image.Image) -> NDArray[np.float32]:
    """Grey :data:`MOTION_SIZE` thumbnail in 0..1 (box filter) of an image (best: the working copy)."""
    grey = image.convert("L") if image.mode != "L" else image
    return np.asarray(grey.resize(MOTION_SIZE, Image.Resampling.BOX), dtype=np.float32) / 255.0


def motion_difference(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Mean absolute difference (0..1) of two motion thumbnails: 0 = identical frames."""
    return float(np.abs(a - b).mean())


def motion_score(mean_difference: float) -> float:
    """Mean absolute difference of consecutive thumbnails -> score: a frozen picture (0) scores 0,
    0.01 scores 0.2, 0.04 scores 0.8, 0.08..0.30 (a host moving, scene changes) scores 1, and
    wholesale changes between every pair of frames (0.60, flicker or unrelated images) fall back to 0.6."""
    return piecewise(mean_difference, MOTION_POINTS)
