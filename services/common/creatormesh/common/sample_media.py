"""Real media generators for tests and the demo: ffmpeg lavfi video/audio, espeak-ng speech, small images.

ffmpeg is the static build shipped by the `imageio-ffmpeg` wheel; speech comes from libespeak-ng and its data
shipped by the `espeakng-loader` wheel (driven through ctypes), or from an `espeak-ng` binary on PATH when the
wheel is missing. Nothing here needs apt or a network.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from creatormesh.common.media import ffmpeg_exe

CUT_SOURCES: tuple[str, ...] = ("testsrc2", "mandelbrot", "smptebars", "color=c=red", "rgbtestsrc", "color=c=blue")
"""lavfi video sources used in turn for the segments of a video with scene cuts."""

_ESPEAK_LOCK = threading.Lock()
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _run_ffmpeg(args: Sequence[str], stdin: bytes | None = None) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args]
    if stdin is None:
        cmd.insert(1, "-nostdin")
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}")


def _lavfi(source: str, size: tuple[int, int], fps: int) -> str:
    sep = ":" if "=" in source else "="
    return f"{source}{sep}size={size[0]}x{size[1]}:rate={fps}"


def make_video(
    path: Path,
    *,
    seconds: float = 4.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    pattern: str = "testsrc2",
    with_audio: bool = True,
    cuts: int = 0,
) -> Path:
    """An H.264 MP4 from a lavfi source (e.g. testsrc2, mandelbrot, smptebars, color=c=black).

    With `cuts` > 0 the video is `cuts + 1` segments of different sources joined, so it has exactly `cuts` hard
    scene cuts. With `with_audio` it has an AAC track of a 440 Hz sine.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sources = [pattern] if cuts <= 0 else [CUT_SOURCES[i % len(CUT_SOURCES)] for i in range(cuts + 1)]
    part = seconds / len(sources)
    args: list[str] = []
    for src in sources:
        args += ["-f", "lavfi", "-t", f"{part:.3f}", "-i", _lavfi(src, size, fps)]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds:.3f}"]
    chains = "".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(len(sources)))
    joined = "".join(f"[v{i}]" for i in range(len(sources)))
    args += ["-filter_complex", f"{chains}{joined}concat=n={len(sources)}:v=1:a=0[v]", "-map", "[v]"]
    if with_audio:
        args += ["-map", f"{len(sources)}:a", "-c:a", "aac", "-b:a", "64k"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-r", str(fps), "-shortest", str(path)]
    _run_ffmpeg(args)
    return path


def make_audio(path: Path, *, source: str = "sine", seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    """A mono WAV from a lavfi audio source: "sine" (440 Hz), "noise" (white), "silence", or any lavfi spec."""
    specs = {
        "sine": f"sine=frequency=440:sample_rate={sample_rate}",
        "noise": f"anoisesrc=color=white:amplitude=0.3:sample_rate={sample_rate}",
        "silence": f"anullsrc=channel_layout=mono:sample_rate={sample_rate}",
    }
    spec = specs.get(source, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run_ffmpeg(["-f", "lavfi", "-i", spec, "-t", f"{seconds:.3f}", "-ac", "1", "-ar", str(sample_rate), str(path)])
    return path


def _collect(wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
    if wav and count > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    return 0


_CHUNKS: list[np.ndarray] = []
_CALLBACK = _SYNTH_CALLBACK(_collect)


@functools.cache
def _espeak() -> tuple[ctypes.CDLL, int]:
    """libespeak-ng of the espeakng-loader wheel, initialised once per process, and its sample rate."""
    import espeakng_loader  # type: ignore[import-untyped]

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0))
    if rate <= 0:
        raise RuntimeError("espeak_Initialize failed")
    lib.espeak_SetSynthCallback(_CALLBACK)
    if lib.espeak_SetVoiceByName(b"en") != 0:
        raise RuntimeError("espeak-ng has no 'en' voice")
    return lib, rate


def _espeak_pcm(text: str) -> tuple[np.ndarray, int]:
    """int16 PCM of `text` and its sample rate."""
    with _ESPEAK_LOCK:
        lib, rate = _espeak()
        _CHUNKS.clear()
        data = text.encode()
        if lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None) != 0:
            raise RuntimeError("espeak_Synth failed")
        lib.espeak_Synchronize()
        pcm = np.concatenate(_CHUNKS) if _CHUNKS else np.zeros(0, dtype=np.int16)
        _CHUNKS.clear()
    return pcm.astype(np.int16), rate


def make_speech(path: Path, text: str, *, sample_rate: int = 16000) -> Path:
    """A mono WAV of `text` spoken by espeak-ng (the espeakng-loader wheel, else an `espeak-ng` binary)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pcm, rate = _espeak_pcm(text)
    except ImportError:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise RuntimeError("no espeak-ng: install the espeakng-loader package") from None
        raw = path.with_suffix(".raw.wav")
        subprocess.run([binary, "-v", "en", "-w", str(raw), text], check=True, capture_output=True)
        _run_ffmpeg(["-i", str(raw), "-ac", "1", "-ar", str(sample_rate), str(path)])
        raw.unlink(missing_ok=True)
        return path
    if pcm.size == 0:
        raise RuntimeError("espeak-ng produced no audio")
    fmt = ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"]
    _run_ffmpeg([*fmt, "-ac", "1", "-ar", str(sample_rate), str(path)], stdin=pcm.tobytes())
    return path


def _image_array(kind: str, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "bright":
        return np.full((h, w, 3), 235, dtype=np.uint8)
    if kind == "dark":
        return np.full((h, w, 3), 18, dtype=np.uint8)
    if kind == "grey":
        grad = (96 + 64 * xx / max(w - 1, 1)).astype(np.uint8)
        return np.repeat(grad[:, :, None], 3, axis=2)
    if kind == "colourful":
        hue = (xx / w * 6 + yy / h * 2) % 6
        rgb = np.stack([np.abs(hue - 3) - 1, 2 - np.abs(hue - 2), 2 - np.abs(hue - 4)], axis=2)
        return np.asarray(np.clip(rgb, 0, 1) * 255, dtype=np.uint8)
    if kind == "noise":
        return np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    raise ValueError(f"unknown image kind {kind!r} (bright, dark, grey, colourful, noise)")


def make_image(path: Path, *, kind: str = "bright", size: tuple[int, int] = (160, 120)) -> Path:
    """A small PNG/JPEG (by suffix) keyframe: bright, dark, grey (gradient), colourful (hue wheel) or noise.

    Faces cannot be drawn convincingly here; the face test uses a small public-domain photo under tests/data.
    """
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_image_array(kind, size)).save(path)
    return path
