"""A tiny, randomly initialised Qwen2 causal LM with a tokenizer built offline.

Tests and this CPU-only machine train the policy on it; production points the same
code at a real Qwen2.5-1.5B-Instruct directory. The builder is the kit's
(``creatormesh.common.tiny_lm``); the tokenizer is trained on the policy's own
prompt/answer corpus plus digits and JSON punctuation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from creatormesh.common import tiny_lm

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

#: Extra corpus lines so every digit, JSON punctuation mark and number shape is covered.
EXTRA_CORPUS = (
    "0 1 2 3 4 5 6 7 8 9 0.0 0.5 1.0 10 100 1000 -1 1e-3",
    '{"recommended_share": 0.62, "principle": "content_quality", "rationale": ""}',
    "{ } [ ] : , \" . - _ ( ) % / ! ? ; ' ` ```json ```",
    "true false null NaN Infinity",
)


def corpus_from_pairs(pairs: Sequence[object]) -> list[str]:
    """Texts of prompts and answers of preference pairs (:class:`~.dataset.PreferencePair`)."""
    texts: list[str] = []
    for pair in pairs:
        for message in getattr(pair, "prompt", []):
            texts.append(message["content"])
        texts.append(str(getattr(pair, "chosen", "")))
        texts.append(str(getattr(pair, "rejected", "")))
    return texts


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """The kit's byte-level BPE trained on ``corpus`` plus the digit and JSON lines the policy writes."""
    return tiny_lm.build_tokenizer([*EXTRA_CORPUS, *corpus], vocab_size)


def build_tiny_model(
    out_dir: str | Path,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 2048,
    max_position_embeddings: int = 2048,
) -> Path:
    """Build and save (safetensors) a tiny random Qwen2 model and its tokenizer in ``out_dir``.

    Without ``corpus``, the tokenizer is trained on prompts and answers of a preference
    dataset generated with ``seed``. Returns ``out_dir``."""
    out = Path(out_dir)
    if corpus is None:
        from creatormesh.allocation.policy.dataset import generate

        corpus = corpus_from_pairs(generate(240, seed=seed))
    tokenizer = build_tokenizer(corpus, vocab_size)
    tiny_lm.build_tiny_qwen2(out, tokenizer, seed=seed, max_position_embeddings=max_position_embeddings)
    vocab = len(tokenizer)
    (out / "creatormesh_tiny.json").write_text(
        json.dumps({"kind": "tiny-qwen2", "seed": seed, "vocab_size": vocab}, indent=2) + "\n"
    )
    return out
