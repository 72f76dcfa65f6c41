"""faster-whisper engine: a CTranslate2 Whisper model loaded from a local directory, never from a hub."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from creatormesh.stream_clipper.highlights import Word

REQUIRED_FILES: tuple[str, ...] = ("model.bin", "config.json", "tokenizer.json")
"""Files a converted model directory must hold (without tokenizer.json faster-whisper would go to the hub)."""

_RATE = 16000


def _resample(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    from creatormesh.stream_clipper.stt import resample

    return resample(pcm, sample_rate, _RATE)


class FasterWhisperEngine:
    """Whisper through faster-whisper (the `whisper` extra), CPU int8 by default or GPU (device="cuda").

    `model_dir` is a CTranslate2 conversion (ct2-transformers-converter --copy_files tokenizer.json
    preprocessor_config.json). `temperatures` are tried in turn when a decode looks like a failure
    (faster-whisper's fallback; one value turns it off). Words carry Whisper's word timestamps and
    probabilities; language "" lets the model detect it. CTranslate2 models may be called from several threads.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 1,
        cpu_threads: int = 0,
        temperatures: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    ) -> None:
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise ValueError(
                f"faster-whisper model directory {str(path)!r} does not exist; set it to a local CTranslate2 "
                "Whisper model (hub model names are not downloaded)"
            )
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise ValueError(f"faster-whisper model directory {str(path)!r} lacks {', '.join(missing)}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        self.model_dir = path
        self.beam_size = beam_size
        self.temperatures = tuple(float(t) for t in temperatures) or (0.0,)
        self._model: Any = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )

    def transcribe(self, pcm: np.ndarray, sample_rate: int, *, offset_s: float = 0.0, language: str = "") -> list[Word]:
        """Words in `pcm` with Whisper's word timestamps, offset by `offset_s`."""
        audio = _resample(pcm, sample_rate)
        if audio.size == 0:
            return []
        duration = audio.size / _RATE
        lang = language.strip().lower().replace("_", "-").split("-")[0] or None
        segments, _info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=self.beam_size,
            temperature=list(self.temperatures),
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        words: list[Word] = []
        for segment in segments:
            for w in segment.words or ():
                text = str(w.word).strip()
                if not text:
                    continue
                start = min(max(float(w.start), 0.0), duration)
                end = min(max(float(w.end), start), duration)
                conf = min(max(float(w.probability), 0.0), 1.0)
                words.append(Word(text, offset_s + start, offset_s + end, conf))
        return sorted(words, key=lambda w: w.start)
