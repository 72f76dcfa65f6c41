"""Speech-to-text on real espeak-ng speech (PocketSphinx's wheel model) and a tiny random faster-whisper model.

PocketSphinx hears espeak-ng poorly (measured: roughly 15-60 % of the words of a short sentence), so the checks on
what it heard are loose; the timing checks are strict.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.media import decode_pcm
from creatormesh.common.sample_media import make_speech
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.stt import (
    FasterWhisperEngine,
    PocketSphinxEngine,
    SpeechToText,
    build_engine,
    clean_token,
    resample,
    transcribe_span,
)

RATE = 16000
SENTENCE = "yes yes yes, we did it. this is a good day."


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """16 kHz PCM of SENTENCE spoken by espeak-ng."""
    return decode_pcm(make_speech(tmp_path_factory.mktemp("stt") / "speech.wav", SENTENCE), sample_rate=RATE)


@pytest.fixture(scope="module")
def sphinx() -> PocketSphinxEngine:
    """One shared full-vocabulary engine (loading the language model takes a second)."""
    return PocketSphinxEngine()


def check_words(words: list[Word], lo: float, hi: float) -> None:
    """Sorted, inside [lo, hi], no fillers, confidence in [0, 1]."""
    assert all(isinstance(w, Word) for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    for w in words:
        assert lo - 1e-6 <= w.start <= w.end <= hi + 1e-6, w
        assert 0.0 <= w.confidence <= 1.0
        assert w.text and w.text == w.text.strip()
        assert clean_token(w.text) == w.text, w  # no <s>, <sil>, [NOISE], read(2)


def test_pocketsphinx_hears_real_speech_with_offset_times(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    duration = speech.size / RATE
    words = sphinx.transcribe(speech, RATE, offset_s=100.0)
    assert sphinx.name == "pocketsphinx"
    check_words(words, 100.0, 100.0 + duration)
    assert len(words) >= 3
    heard = {w.text.lower() for w in words}
    assert heard & set(re.findall(r"\w+", SENTENCE)), heard  # loose: espeak is hard for it
    assert words[-1].end - words[0].start > duration / 3  # spread over the speech, not one blip


def test_pocketsphinx_hears_little_in_silence(sphinx: PocketSphinxEngine) -> None:
    assert sphinx.transcribe(np.zeros(0, dtype=np.float32), RATE) == []
    silent = np.zeros(2 * RATE, dtype=np.float32)
    words = sphinx.transcribe(silent, RATE, offset_s=5.0)
    check_words(words, 5.0, 7.0)
    assert len(words) <= 2  # it sometimes hallucinates one short word on digital silence


def test_transcribe_span_places_words_at_the_speech(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    at = 2.0
    buffer = np.zeros(int((at + speech.size / RATE + 1.5) * RATE), dtype=np.float32)
    buffer[int(at * RATE) : int(at * RATE) + speech.size] = speech
    start, end = 1.5, buffer.size / RATE - 0.5
    words = transcribe_span(sphinx, buffer, RATE, start, end)
    check_words(words, start, end)
    assert len(words) >= 3
    near = [w for w in words if at - 0.3 <= w.start and w.end <= at + speech.size / RATE + 0.3]
    assert len(near) >= 0.75 * len(words), words
    assert words[0].start >= at - 0.3


def test_transcribe_span_clamps_to_the_buffer(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    assert transcribe_span(sphinx, speech, RATE, 50.0, 60.0) == []
    words = transcribe_span(sphinx, speech[: RATE // 2], RATE, -3.0, 99.0)  # whole half second, offset 0
    check_words(words, 0.0, 0.5)


def test_pocketsphinx_resamples_other_rates(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    at_8k = resample(speech, RATE, 8000)
    assert abs(at_8k.size - speech.size / 2) <= 1
    words = sphinx.transcribe(at_8k, 8000, offset_s=1.0)
    check_words(words, 1.0, 1.0 + at_8k.size / 8000)
    assert words


def test_pocketsphinx_keyword_spotting(speech: np.ndarray) -> None:
    engine = PocketSphinxEngine(keyphrases=["We Did It", "good day", "xqzzyplorf"])
    assert engine.keyphrases == ("we did it", "good day")  # the unknown word is dropped
    hits = engine.transcribe(speech, RATE, offset_s=10.0)
    check_words(hits, 10.0, 10.0 + speech.size / RATE)
    assert hits and {h.text for h in hits} <= set(engine.keyphrases)
    assert engine.transcribe(np.zeros(RATE, dtype=np.float32), RATE) == []
    with pytest.raises(ValueError, match="dictionary"):
        PocketSphinxEngine(keyphrases=["xqzzyplorf"])


def test_pocketsphinx_is_english_only(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    engine: SpeechToText = sphinx  # satisfies the protocol (checked by mypy)
    assert engine.name == "pocketsphinx"
    with pytest.raises(ValueError, match="English"):
        sphinx.transcribe(speech, RATE, language="de")


async def test_pocketsphinx_leaves_the_event_loop_running(sphinx: PocketSphinxEngine, speech: np.ndarray) -> None:
    """Transcribing from a worker thread must leave the service's loop running (Kafka heartbeats, gRPC). The C
    decoder holds the GIL while it works (in-process, one utterance of ~20 s stalled the loop for ~6 s), so it runs
    in a child process."""
    long_speech = np.tile(np.concatenate([speech, np.zeros(RATE // 2, dtype=np.float32)]), 6)  # ~20 s
    gaps: list[float] = []
    task = asyncio.create_task(asyncio.to_thread(sphinx.transcribe, long_speech, RATE))
    last = time.perf_counter()
    while not task.done():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    words = await task
    assert len(words) >= 10
    assert len(gaps) > 20
    assert max(gaps) < 2.0, f"event loop stalled {max(gaps):.2f} s while transcribing"


def test_pocketsphinx_replaces_a_dead_child(speech: np.ndarray) -> None:
    engine = PocketSphinxEngine()
    before = engine.transcribe(speech, RATE)
    assert engine._pool is not None
    for pid in list(engine._pool._processes):  # the child dies (OOM killer, crash)
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert engine.transcribe(speech, RATE) == before  # a new child, same words
    engine.close()
    engine.close()  # idempotent
    assert engine.transcribe(speech, RATE) == before  # and restarts on demand
    engine.close()


def test_clean_token() -> None:
    assert [clean_token(t) for t in ("<s>", "</s>", "<sil>", "[NOISE]", "++UH++", "read(2)", " go ")] == [
        "",
        "",
        "",
        "",
        "",
        "read",
        "go",
    ]


def test_build_engine_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"stt_engine.*pocketsphinx.*faster-whisper"):
        build_engine("vosk")
    with pytest.raises(ValueError, match="stt_model_dir"):
        build_engine("faster-whisper")
    with pytest.raises(ValueError, match="does not exist"):
        build_engine("faster-whisper", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="does not exist"):
        FasterWhisperEngine("tiny.en")  # a hub name is not a directory: never downloaded
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"tokenizer\.json"):
        FasterWhisperEngine(tmp_path)
    spotter = build_engine("PocketSphinx", keyphrases=["good day"])
    assert isinstance(spotter, PocketSphinxEngine)
    assert spotter.keyphrases == ("good day",)


WHISPER_SPECIALS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)


def build_tiny_whisper(out: Path) -> Path:
    """A random English-only Whisper with tiny dims, its byte-level tokenizer built offline (256 byte tokens,
    no merges, Whisper's special tokens), converted to CTranslate2 in `out`/ct2."""
    import ctranslate2  # type: ignore[import-untyped]
    import tokenizers
    import torch
    from tokenizers import decoders, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(WHISPER_SPECIALS))
    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    assert eot is not None and sot is not None
    special = dict.fromkeys(("unk_token", "bos_token", "eos_token", "pad_token"), "<|endoftext|>")
    hf_tok = WhisperTokenizer(tokenizer_object=tok, **special)
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=tok.get_vocab_size() + 1501,  # + the timestamp tokens <|0.00|> .. <|30.00|>
        num_mel_bins=80,
        encoder_layers=1,
        encoder_attention_heads=2,
        decoder_layers=2,
        decoder_attention_heads=2,
        d_model=32,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        begin_suppress_tokens=[eot],
        suppress_tokens=[],
    )
    src = out / "hf"
    WhisperForConditionalGeneration(config).save_pretrained(src)
    hf_tok.save_pretrained(src)
    converter = ctranslate2.converters.TransformersConverter(str(src), copy_files=["tokenizer.json"])
    return Path(converter.convert(str(out / "ct2"), force=True))


def test_faster_whisper_tiny_random_model(tmp_path: Path, speech: np.ndarray) -> None:
    for module in ("faster_whisper", "ctranslate2", "transformers", "torch"):
        pytest.importorskip(module, reason=f"{module} is not installed (the whisper extra)")
    try:
        from transformers import WhisperForConditionalGeneration  # noqa: F401
    except ImportError as exc:  # e.g. a broken optional dependency of transformers (accelerate -> boto3)
        pytest.skip(f"transformers cannot import Whisper to build the tiny model: {exc}")
    model_dir = build_tiny_whisper(tmp_path)
    engine = build_engine("faster-whisper", str(model_dir), temperatures=(0.0,))
    assert isinstance(engine, FasterWhisperEngine) and engine.name == "faster-whisper"
    at_22k = resample(speech, RATE, 22050)
    words = engine.transcribe(at_22k, 22050, offset_s=7.0)  # random weights: text is garbage, timing is not
    check_words(words, 7.0, 7.0 + at_22k.size / 22050)
    assert words  # word_timestamps gave words (seeded weights, deterministic)
    assert engine.transcribe(np.zeros(0, dtype=np.float32), RATE) == []
