"""PocketSphinx decoding in a child process (see `PocketSphinxEngine`): its C decoder holds the GIL while it
works (measured: 5.8 s at a stretch for 21 s of speech), which would stall the service's event loop, Kafka
heartbeats and gRPC included. Only this module is imported in the child."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_decoder: Any = None
"""The child's decoder, made by `setup`."""


def setup(keyphrases: Sequence[str], kws_threshold: float) -> tuple[tuple[str, ...], float]:
    """Make the child's decoder: full decoding, or keyword spotting of `keyphrases` (those with words missing from
    the dictionary are dropped with a warning). Returns (kept keyphrases, frames per second)."""
    global _decoder  # noqa: PLW0603 — one decoder per child process
    from pocketsphinx import Decoder  # type: ignore[import-untyped]

    if not keyphrases:
        _decoder = Decoder(loglevel="FATAL")
        return (), float(_decoder.config["frate"])
    decoder = Decoder(loglevel="FATAL", lm=None)
    kept: list[str] = []
    for phrase in keyphrases:
        words = phrase.lower().split()
        unknown = [w for w in words if decoder.lookup_word(w) is None]
        if not words or unknown:
            log.warning("pocketsphinx keyphrase %r skipped: not in the dictionary: %s", phrase, unknown)
            continue
        kept.append(" ".join(words))
    if not kept:
        raise ValueError(f"none of the keyphrases are in the pocketsphinx dictionary: {list(keyphrases)}")
    unique = tuple(dict.fromkeys(kept))
    with tempfile.TemporaryDirectory() as tmp:
        kws = Path(tmp) / "keyphrases.kws"
        kws.write_text("".join(f"{p} /{kws_threshold:g}/\n" for p in unique), encoding="utf-8")
        decoder.add_kws("keyphrases", str(kws))
    decoder.activate_search("keyphrases")
    _decoder = decoder
    return unique, float(decoder.config["frate"])


def decode(raw: bytes) -> list[tuple[str, int, int, float]]:
    """(token, first frame, last frame, probability) of each segment of one utterance of 16 kHz int16 PCM."""
    if _decoder is None:
        raise RuntimeError("setup() was not called in this process")
    _decoder.start_utt()
    _decoder.process_raw(raw, full_utt=True)
    _decoder.end_utt()
    return [(s.word, int(s.start_frame), int(s.end_frame), float(s.prob)) for s in (_decoder.seg() or ())]
