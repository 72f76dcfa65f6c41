"""Entry Point A: pick high-value samples, export them with weights w = 1 + λV, fine-tune a causal LM on them.

The loss is the seed's section 6.2: per-token cross-entropy, averaged over each sample's real tokens,
multiplied by the sample's weight, averaged over the batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional
from tqdm import tqdm  # type: ignore[import-untyped]

PROBE_SIZE = 64  # samples scored before and after fine-tuning for first_loss / last_loss


@dataclass(frozen=True)
class WeightedSample:
    """One training text with its ViralScore ``v`` and its loss weight."""

    text: str
    v: float
    weight: float


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tune did; the losses are the weighted loss on a fixed probe set before and after."""

    steps: int
    first_loss: float
    last_loss: float
    out_dir: Path


def select_high_value(
    scored: Sequence[tuple[str, float]], *, lam: float = 1.0, min_v: float = 0.0, top_fraction: float = 1.0
) -> list[WeightedSample]:
    """Texts with V >= ``min_v`` within the top ``top_fraction`` by V, weighted 1 + ``lam``·V, best first."""
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    ranked = sorted(scored, key=lambda item: item[1], reverse=True)
    keep = math.ceil(len(ranked) * top_fraction)
    return [WeightedSample(text, v, 1.0 + lam * v) for text, v in ranked[:keep] if v >= min_v]


def write_training_set(samples: Sequence[WeightedSample], path: Path) -> None:
    """Write ``samples`` as JSONL lines ``{"text", "v", "weight"}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps({"text": s.text, "v": s.v, "weight": s.weight}, ensure_ascii=False) + "\n")


def _parse_line(line: str, where: str) -> WeightedSample:
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object with text, v, weight")
    text = row.get("text")
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: 'text' must be a non-empty string")
    v, weight = _number(row, "v", where), _number(row, "weight", where)
    if weight < 0:
        raise ValueError(f"{where}: 'weight' must be >= 0, got {weight}")
    return WeightedSample(text, v, weight)


def _number(row: dict[str, Any], name: str, where: str) -> float:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: '{name}' must be a finite number, got {value!r}")
    return float(value)


def read_training_set(path: Path) -> list[WeightedSample]:
    """Read a JSONL training set; a bad line raises ValueError naming the file and line."""
    samples = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                samples.append(_parse_line(line, f"{path}:{number}"))
    return samples


def weighted_lm_loss(logits: Tensor, labels: Tensor, attention_mask: Tensor, weights: Tensor) -> Tensor:
    """Seed 6.2 loss for next-token prediction.

    ``logits`` [B, T, V] come from the model run on ``labels`` [B, T]; position t predicts label t+1.
    Padding (``attention_mask`` 0) and labels of -100 are ignored. Each sample's mean token CE is
    multiplied by ``weights`` [B] and the result is averaged over the batch.
    """
    pred = logits[:, :-1, :].float()
    target = labels[:, 1:]
    mask = (attention_mask[:, 1:] > 0) & (target != -100)
    token_ce = functional.cross_entropy(
        pred.reshape(-1, pred.size(-1)), target.masked_fill(~mask, 0).reshape(-1), reduction="none"
    ).view(target.shape)
    maskf = mask.to(token_ce.dtype)
    per_sample = (token_ce * maskf).sum(dim=1) / maskf.sum(dim=1).clamp(min=1.0)
    return (per_sample * weights.to(per_sample.dtype)).mean()


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    eos = tokenizer.eos_token or ""
    enc = tokenizer(
        [t + eos for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def _batch_loss(model: Any, tokenizer: Any, batch: Sequence[WeightedSample], max_length: int) -> Tensor:
    enc = _encode(tokenizer, [s.text for s in batch], max_length)
    logits = model(**enc).logits
    weights = torch.tensor([s.weight for s in batch], dtype=torch.float32)
    return weighted_lm_loss(logits, enc["input_ids"], enc["attention_mask"], weights)


def _probe_loss(model: Any, tokenizer: Any, probe: Sequence[WeightedSample], batch_size: int, max_length: int) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(probe), batch_size):
            batch = probe[i : i + batch_size]
            total += float(_batch_loss(model, tokenizer, batch, max_length)) * len(batch)
    return total / max(len(probe), 1)


def _load(model_dir: Path, lora_rank: int) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
    if lora_rank > 0:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora_rank,
            lora_alpha=2 * lora_rank,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    return model, tokenizer


def weighted_finetune(
    model_dir: Path,
    samples: Sequence[WeightedSample],
    out_dir: Path,
    *,
    epochs: int = 1,
    lr: float = 5e-4,
    batch_size: int = 8,
    max_length: int = 128,
    lora_rank: int = 0,
    progress: bool = True,
    seed: int = 0,
) -> FinetuneResult:
    """Fine-tune the causal LM in ``model_dir`` (local files, CPU) with :func:`weighted_lm_loss`.

    Saves the full model and tokenizer to ``out_dir``, or only the LoRA adapter (+ tokenizer) when
    ``lora_rank`` > 0.
    """
    if not samples:
        raise ValueError("weighted_finetune needs at least one sample")
    torch.manual_seed(seed)
    model, tokenizer = _load(model_dir, lora_rank)
    gen = torch.Generator().manual_seed(seed)
    probe = [samples[int(i)] for i in torch.randperm(len(samples), generator=gen)[:PROBE_SIZE]]
    first_loss = _probe_loss(model, tokenizer, probe, batch_size, max_length)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    n_batches = math.ceil(len(samples) / batch_size)
    steps = 0
    with tqdm(total=epochs * n_batches, desc="weighted fine-tune", disable=not progress) as bar:
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(samples), generator=gen).tolist()
            for b in range(n_batches):
                batch = [samples[i] for i in order[b * batch_size : (b + 1) * batch_size]]
                loss = _batch_loss(model, tokenizer, batch, max_length)
                optimizer.zero_grad(set_to_none=True)
                torch.autograd.backward(loss)
                optimizer.step()
                steps += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    last_loss = _probe_loss(model, tokenizer, probe, batch_size, max_length)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return FinetuneResult(steps=steps, first_loss=first_loss, last_loss=last_loss, out_dir=out_dir)
