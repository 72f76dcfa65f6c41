"""A tiny random Qwen2 causal LM with its own byte-level BPE, built offline (tests and the demo)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"  # Qwen2Tokenizer adds it as unk when missing
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

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


def _train_tokenizer(corpus: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END, ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, eos_token=IM_END, pad_token=PAD, unk_token=ENDOFTEXT
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    found = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(found, int)
    return found


def build_tiny_lm(out_dir: Path, corpus: Sequence[str], *, seed: int = 0, vocab_size: int = 1024) -> Path:
    """Train a BPE on ``corpus``, build a random tiny Qwen2 (head_dim 32) and save both to ``out_dir``."""
    if not corpus:
        raise ValueError("build_tiny_lm needs a non-empty corpus")
    tokenizer = _train_tokenizer(corpus, vocab_size)
    eos_id, pad_id = _token_id(tokenizer, IM_END), _token_id(tokenizer, PAD)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        intermediate_size=256,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
