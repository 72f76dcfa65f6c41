"""A tiny, randomly initialised Qwen2 causal LM with a tokenizer built offline.

Tests and this CPU-only machine train the policy on it; production points the same
code at a real Qwen2.5-1.5B-Instruct directory. The tokenizer is a byte-level BPE
trained with the ``tokenizers`` library on the policy's own prompt/answer corpus
(plus digits and JSON punctuation), with Qwen's special tokens and a ChatML
chat template, so the directory loads with ``AutoTokenizer``/``AutoModelForCausalLM``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)

#: ChatML, as Qwen2.5 renders it (without Qwen's default system message).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

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
    """Train a byte-level BPE on ``corpus`` and wrap it as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    # Qwen-like: digits one by one, then byte-level pieces.
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*EXTRA_CORPUS, *corpus], trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=None,
        additional_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
        padding_side="right",
    )


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
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        from creatormesh.allocation.policy.dataset import generate

        corpus = corpus_from_pairs(generate(240, seed=seed))
    tokenizer = build_tokenizer(corpus, vocab_size)
    vocab = len(tokenizer)
    eos_id = tokenizer.get_vocab()[IM_END]
    pad_id = tokenizer.get_vocab()[PAD]
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=128,
        num_attention_heads=4,  # head_dim 32: vLLM's CPU kernels reject 16
        num_key_value_heads=2,
        num_hidden_layers=2,
        intermediate_size=256,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=eos_id
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "creatormesh_tiny.json").write_text(
        json.dumps({"kind": "tiny-qwen2", "seed": seed, "vocab_size": vocab}, indent=2) + "\n"
    )
    return out
