"""A tiny, randomly initialised Qwen2 causal LM with a byte-level BPE tokenizer trained offline on a corpus.

Services whose real model is an LLM (allocation's DPO policy, viral_scoring's rerank and weighted fine-tune)
build one of these for tests and the single-machine demo: it loads with ``AutoTokenizer`` /
``AutoModelForCausalLM`` and serves with vLLM's CPU build (head_dim 32: vLLM's CPU kernels reject 16), exactly
as a real Qwen2.5 directory would. Needs the ``lm`` extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"

#: ChatML, as Qwen2.5 renders it (without Qwen's default system message).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = 2048,
    *,
    unk_token: str | None = None,
    individual_digits: bool = True,
    additional_special_tokens: Sequence[str] = (IM_START,),
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` (specials: pad, im_start, im_end and ``unk_token`` if given) and wrap
    it as a ``PreTrainedTokenizerFast`` with eos <|im_end|>, pad <|pad|> and the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if individual_digits  # Qwen-like: digits one by one, then byte-level pieces
        else byte_level
    )
    bpe.decoder = decoders.ByteLevel()
    specials = [PAD, IM_START, IM_END, *([unk_token] if unk_token else [])]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=unk_token,
        additional_special_tokens=list(additional_special_tokens),
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
        padding_side="right",
    )


def build_tiny_qwen2(
    out_dir: str | Path, tokenizer: PreTrainedTokenizerFast, *, seed: int = 0, max_position_embeddings: int = 2048
) -> Path:
    """A random Qwen2 (hidden 128, 4 heads of 32, 2 KV heads, 2 layers) sized to ``tokenizer``; saves both
    (safetensors) in ``out_dir`` and returns it."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eos_id = tokenizer.get_vocab()[IM_END]
    pad_id = tokenizer.get_vocab()[PAD]
    config = Qwen2Config(
        vocab_size=len(tokenizer),
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
    return out
