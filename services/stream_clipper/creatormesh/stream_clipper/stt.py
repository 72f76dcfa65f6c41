"""Speech-to-text behind one interface: PocketSphinx (offline default) or faster-whisper (production).

PocketSphinx's English model ships inside its PyPI wheel, so the demo and tests transcribe real speech with no
download. faster-whisper loads a CTranslate2 Whisper model from a configured local directory only
(see `creatormesh.stream_clipper.stt_whisper`). Both return `Word`s in seconds from the start of the source.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import numpy as np

from creatormesh.stream_clipper import stt_sphinx
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.stt_whisper import FasterWhisperEngine

__all__ = [
    "ENGINE_KINDS",
    "FasterWhisperEngine",
    "PocketSphinxEngine",
    "SpeechToText",
    "build_engine",
    "clean_token",
    "resample",
    "transcribe_span",
]

log = logging.getLogger(__name__)

ENGINE_KINDS: tuple[str, ...] = ("pocketsphinx", "faster-whisper")
"""Accepted values of the engine kind setting."""

SAMPLE_RATE = 16000
"""Rate both engines' models expect; other rates are resampled."""

_ALTERNATE = re.compile(r"\(\d+\)$")
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+|\(.*\))$")


class SpeechToText(Protocol):
    """A recogniser: mono float32 PCM in [-1, 1] to words sorted by start, times offset by `offset_s`."""

    name: str

    def transcribe(self, pcm: np.ndarray, sample_rate: int, *, offset_s: float = 0.0, language: str = "") -> list[Word]:
        """Words in `pcm`, times in seconds as `offset_s` + time within `pcm`; fillers and silences removed."""
        ...


def clean_token(token: str) -> str:
    """A recogniser token without alternate-pronunciation suffixes ("read(2)"); "" for fillers and silences."""
    text = token.strip()
    if not text or _FILLER.match(text):
        return ""
    return _ALTERNATE.sub("", text).strip()


def resample(pcm: np.ndarray, sample_rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 `pcm` at `target` Hz (FFT resampling, band-limited; 16 kHz input is returned as is)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    audio = np.asarray(pcm, dtype=np.float32).reshape(-1)
    if sample_rate == target or audio.size == 0:
        return audio
    n_out = max(1, round(audio.size * target / sample_rate))
    spectrum = np.fft.rfft(audio.astype(np.float64))
    keep = min(spectrum.size, n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n=n_out) * (n_out / audio.size)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _is_english(language: str) -> bool:
    lang = language.strip().lower()
    return not lang or lang == "en" or lang.startswith(("en-", "en_"))


class PocketSphinxEngine:
    """PocketSphinx with the en-us model from its wheel. English only.

    With `keyphrases` it runs in keyword-spotting mode and returns only those phrases (one `Word` per hit,
    its text the whole phrase); phrases with words missing from the dictionary are dropped with a warning.
    A lower `kws_threshold` finds more (and more false) hits.

    The decoder runs in a child process (`stt_sphinx`), one utterance at a time: in-process it held the GIL
    for the whole decode and stalled the service's event loop. Calls from several threads are safe and run
    one at a time; a child that dies is replaced on the next call. `close()` stops it (so does garbage
    collection).
    """

    name = "pocketsphinx"

    def __init__(self, *, keyphrases: Sequence[str] = (), kws_threshold: float = 1e-20) -> None:
        self.kws_threshold = kws_threshold
        self._wanted = tuple(keyphrases)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.keyphrases, self._frate = self._start()

    def _start(self) -> tuple[tuple[str, ...], float]:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            kept, frate = pool.submit(stt_sphinx.setup, self._wanted, self.kws_threshold).result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        self._pool = pool
        self._finalizer = weakref.finalize(self, pool.shutdown, wait=False, cancel_futures=True)
        return kept, frate

    def close(self) -> None:
        """Stop the child process."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._pool = None

    def _decode(self, raw: bytes) -> list[tuple[str, int, int, float]]:
        with self._lock:
            for attempt in (1, 2):
                if self._pool is None:
                    self._start()
                assert self._pool is not None
                try:
                    return self._pool.submit(stt_sphinx.decode, raw).result()
                except BrokenProcessPool:
                    log.warning("pocketsphinx child process died (attempt %d); starting a new one", attempt)
                    if self._finalizer is not None:
                        self._finalizer()
                    self._pool = None
            raise RuntimeError("pocketsphinx child process died twice on the same audio")

    def transcribe(self, pcm: np.ndarray, sample_rate: int, *, offset_s: float = 0.0, language: str = "") -> list[Word]:
        """Words (or keyphrase hits) in `pcm`; ValueError for a language other than English."""
        if not _is_english(language):
            raise ValueError(f"pocketsphinx has only an English model, asked for language {language!r}")
        audio = resample(pcm, sample_rate)
        if audio.size == 0:
            return []
        raw = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        duration = audio.size / SAMPLE_RATE
        words: list[Word] = []
        for token, first, last, prob in self._decode(raw):
            text = clean_token(token)
            if not text:
                continue
            start = min(max(first / self._frate, 0.0), duration)
            end = min(max((last + 1) / self._frate, start), duration)
            conf = min(max(float(prob), 0.0), 1.0)
            words.append(Word(text, offset_s + start, offset_s + end, conf))
        return sorted(words, key=lambda w: w.start)


def build_engine(kind: str, model_dir: str | None = None, **options: Any) -> SpeechToText:
    """The engine named by the `stt_engine` setting: "pocketsphinx" or "faster-whisper" (which needs the
    `stt_model_dir` setting). `options` go to the engine's constructor."""
    name = kind.strip().lower().replace("_", "-")
    if name == "pocketsphinx":
        return PocketSphinxEngine(**options)
    if name == "faster-whisper":
        if not model_dir:
            raise ValueError("stt_model_dir must name a local CTranslate2 Whisper model directory for faster-whisper")
        return FasterWhisperEngine(model_dir, **options)
    raise ValueError(f"stt_engine must be one of {', '.join(ENGINE_KINDS)}; got {kind!r}")


def transcribe_span(
    engine: SpeechToText, pcm: np.ndarray, sample_rate: int, start_s: float, end_s: float, *, language: str = ""
) -> list[Word]:
    """Words spoken in [start_s, end_s) of `pcm` (clamped to it), in seconds from the start of `pcm`."""
    n = int(np.asarray(pcm).shape[0])
    first = min(max(round(start_s * sample_rate), 0), n)
    last = min(max(round(end_s * sample_rate), first), n)
    if last <= first:
        return []
    return engine.transcribe(pcm[first:last], sample_rate, offset_s=first / sample_rate, language=language)
