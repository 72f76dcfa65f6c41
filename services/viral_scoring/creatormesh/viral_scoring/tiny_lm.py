"""A tiny random Qwen2 causal LM (the kit's builder) with a BPE trained on video titles, for tests and the demo."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from creatormesh.common import tiny_lm

ENDOFTEXT = "<|endoftext|>"

_OPENERS = ["How I", "Why we", "Watch me", "I tried to", "We finally", "Nobody expected us to", "Can you", "My dog"]
_VERBS = ["built", "cooked", "painted", "fixed", "ranked", "tested", "survived", "explored", "cleaned", "raced"]
_THINGS = [
    "a tiny house",
    "the best pizza",
    "an old car",
    "my garden",
    "a haunted castle",
    "every burger",
    "a giant cake",
    "the cheapest phone",
    "a secret beach",
    "my first guitar",
    "a robot",
    "the city",
]
_TAILS = [
    "in 24 hours",
    "on a budget",
    "with my mum",
    "at 3am",
    "in the rain",
    "for 100 days",
    "blindfolded",
    "without help",
    "in London",
    "(gone wrong)",
    "!!",
    "| part 2",
    "and it worked",
    "before school",
]


def synthetic_titles(n: int, seed: int = 0) -> list[str]:
    """``n`` varied short video titles built from word lists (a corpus for tests and demos)."""
    rng = random.Random(seed)
    return [f"{rng.choice(_OPENERS)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} {rng.choice(_TAILS)}" for _ in range(n)]


def build_tiny_lm(out_dir: Path, corpus: Sequence[str], *, seed: int = 0, vocab_size: int = 1024) -> Path:
    """Train a BPE on ``corpus``, build a random tiny Qwen2 (head_dim 32) and save both to ``out_dir``."""
    if not corpus:
        raise ValueError("build_tiny_lm needs a non-empty corpus")
    tokenizer = tiny_lm.build_tokenizer(
        corpus,
        vocab_size,
        unk_token=ENDOFTEXT,  # Qwen2Tokenizer adds it as unk when missing
        individual_digits=False,
        additional_special_tokens=(),
        min_frequency=0,
    )
    return tiny_lm.build_tiny_qwen2(out_dir, tokenizer, seed=seed, max_position_embeddings=1024)
