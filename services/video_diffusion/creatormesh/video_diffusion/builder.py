"""Tiny text-to-video pipelines for tests and the single-machine demo.

:func:`build_tiny` assembles the same diffusers pipeline class the production model uses (``WanPipeline`` or
``CogVideoXPipeline``) from tiny, randomly initialised components and a word-level tokenizer built offline, and saves
it as a normal local model directory (safetensors) that :meth:`Engine.load` reads exactly like the real model.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

#: diffusers and transformers are untyped for mypy: their classes are reached through Any.
D: Any = diffusers
T: Any = transformers

KINDS = ("wan", "cogvideox")

#: Special tokens, T5's ids: pad 0, end of sequence 1, unknown 2.
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")

#: A small English vocabulary (ad and video words); anything else maps to <unk>.
WORDS_TEXT = """
a an the and or of in on at to with for from by over under into through near behind above below between
is are was be being has have this that these those it its their our your my his her new best
video ad advert commercial brand product shoe shoes sneaker car phone watch coffee drink bottle food pizza burger
person man woman child kid dog cat bird horse people crowd team friend family athlete runner dancer chef
city street road beach sea ocean river lake mountain forest park desert sky sun moon star cloud rain snow
day night morning evening sunset sunrise summer winter spring autumn light shadow fire water wind
running walking jumping dancing flying driving swimming cooking eating drinking smiling laughing playing
run walk jump dance fly drive swim cook eat drink smile laugh play shine glow spin fall rise move
red orange yellow green blue purple pink black white gray gold silver bright dark colorful neon
big small tall short fast slow happy calm loud quiet beautiful modern vintage cinematic realistic
close up wide shot slow motion camera pan zoom aerial view scene background foreground
logo text sale offer discount price free buy shop store online today now
"""
WORDS = WORDS_TEXT.split()


def build_tokenizer(words: list[str] | None = None) -> Any:
    """A T5-style word-level tokenizer (lower-cased, ``</s>`` appended) built offline from ``words``."""
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words if words is not None else WORDS:
        vocab.setdefault(word.lower(), len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return T.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


#: The tiny text encoder of both pipelines (Wan's UMT5 and CogVideoX's T5 share the architecture's knobs).
TINY_T5: dict[str, int] = {
    "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
}  # fmt: skip


def _tiny_wan(vocab_size: int) -> dict[str, Any]:
    transformer = D.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        rope_max_seq_len=32,
    )
    vae = D.AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    text_encoder = T.UMT5EncoderModel(T.UMT5Config(vocab_size=vocab_size, **TINY_T5))
    return {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "scheduler": D.FlowMatchEulerDiscreteScheduler(shift=7.0),
    }


def _tiny_cogvideox(vocab_size: int) -> dict[str, Any]:
    transformer = D.CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=2,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    )
    vae = D.AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    text_encoder = T.T5EncoderModel(T.T5Config(vocab_size=vocab_size, **TINY_T5))
    return {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "scheduler": D.CogVideoXDDIMScheduler(),
    }


def build_tiny(out_dir: Path, kind: str = "wan", seed: int = 0) -> Path:
    """Build a tiny random ``kind`` pipeline ("wan" or "cogvideox") and save it to ``out_dir``; deterministic per seed.

    ``out_dir`` must not exist or be empty. Returns ``out_dir``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown pipeline kind {kind!r}; expected one of {', '.join(KINDS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty")
    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = _tiny_wan(len(tokenizer)) if kind == "wan" else _tiny_cogvideox(len(tokenizer))
    for part in parts.values():
        if isinstance(part, torch.nn.Module):
            part.eval()
    pipeline_class = D.WanPipeline if kind == "wan" else D.CogVideoXPipeline
    pipe = pipeline_class(tokenizer=tokenizer, **parts)
    return write_dir(out_dir, lambda staging: pipe.save_pretrained(staging, safe_serialization=True))


def write_dir(out_dir: Path, save: Callable[[Path], object]) -> Path:
    """Have ``save`` fill a hidden sibling directory, then move it to ``out_dir`` (which must be missing or empty):
    a failed or interrupted save leaves no half-written model behind."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save(staging)
        if out_dir.exists():
            out_dir.rmdir()
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
