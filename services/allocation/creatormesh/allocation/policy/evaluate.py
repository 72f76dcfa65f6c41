"""Held-out evaluation of a DPO policy.

For each pair, the DPO implicit reward of an answer y is β·(log π(y|x) − log π_ref(y|x)),
π the base model with the adapter and π_ref the base model alone. Preference
accuracy is the fraction of pairs whose chosen answer gets the larger reward (ties
count as misses, as in TRL), the reward margin is the mean of
r(chosen) − r(rejected). For comparison, the base model's own preference: the
fraction of pairs where log π_ref(chosen) > log π_ref(rejected).

Log-probabilities are summed over the answer tokens (the answer plus the end-of-turn
token), tokenized exactly as TRL's DPOTrainer does for conversational data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creatormesh.allocation.policy.dataset import PreferencePair

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class EvalResult:
    """Held-out preference metrics of the trained policy and of the base model."""

    preference_accuracy: float
    mean_reward_margin: float
    n: int
    per_principle: dict[str, float] = field(default_factory=dict)
    base_preference_accuracy: float = 0.0
    base_mean_logp_margin: float = 0.0
    base_per_principle: dict[str, float] = field(default_factory=dict)
    beta: float = 0.1

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "beta": self.beta,
            "preference_accuracy": self.preference_accuracy,
            "mean_reward_margin": self.mean_reward_margin,
            "per_principle": self.per_principle,
            "base_preference_accuracy": self.base_preference_accuracy,
            "base_mean_logp_margin": self.base_mean_logp_margin,
            "base_per_principle": self.base_per_principle,
        }


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    encoded: Any = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    ids: list[int] = list(encoded["input_ids"])
    return ids


def tokenize_pair(
    tokenizer: PreTrainedTokenizerBase, pair: PreferencePair, max_length: int = 1024
) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, chosen ids, rejected ids), split where TRL splits them."""
    prompt = _ids(tokenizer, pair.prompt, True)
    chosen = _ids(tokenizer, [*pair.prompt, {"role": "assistant", "content": pair.chosen}], False)
    rejected = _ids(tokenizer, [*pair.prompt, {"role": "assistant", "content": pair.rejected}], False)
    cut = min(_common_prefix(prompt, chosen), _common_prefix(prompt, rejected))
    room = max(0, max_length - cut)
    return prompt[:cut], chosen[cut:][:room], rejected[cut:][:room]


Item = tuple[list[int], list[int]]


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sequence_logps(model: Any, items: Sequence[Item], pad_id: int, batch_size: int = 8) -> list[float]:
    """Sum of log p(completion token | prefix) for each (prompt ids, completion ids)."""
    import torch

    device = next(model.parameters()).device
    out: list[float] = []
    for batch in _batches(items, batch_size):
        seqs = [p + c for p, c in batch]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.bool)
        for i, ((prompt, _), seq) in enumerate(zip(batch, seqs, strict=True)):
            input_ids[i, : len(seq)] = torch.tensor(seq)
            attention[i, : len(seq)] = 1
            mask[i, len(prompt) : len(seq)] = True
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, 1:].to(device)
        token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        total = (token_logp * mask[:, 1:].to(device)).sum(dim=1)
        out.extend(float(v) for v in total.cpu())
    return out


def _rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def evaluate(
    model_dir: str | Path,
    adapter_dir: str | Path | None,
    pairs: Sequence[PreferencePair],
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int = 1024,
) -> EvalResult:
    """Preference accuracy and mean reward margin of the policy (base + adapter) on
    ``pairs``, per violated principle, and the base model's own preference accuracy.
    Without an adapter the policy is the reference: every reward is 0 (accuracy 0)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not pairs:
        raise ValueError("no pairs to evaluate")
    tokenizer = AutoTokenizer.from_pretrained(Path(model_dir), local_files_only=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(Path(model_dir), dtype=dtype, local_files_only=True)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    model = model.to(device).eval()

    tokenized = [tokenize_pair(tokenizer, pair, max_length) for pair in pairs]
    chosen_items = [(p, c) for p, c, _ in tokenized]
    rejected_items = [(p, r) for p, _, r in tokenized]

    def reference() -> AbstractContextManager[Any]:
        return model.disable_adapter() if adapter_dir is not None else nullcontext()

    with reference():
        ref_chosen = sequence_logps(model, chosen_items, pad_id, batch_size)
        ref_rejected = sequence_logps(model, rejected_items, pad_id, batch_size)
    if adapter_dir is not None:
        pol_chosen = sequence_logps(model, chosen_items, pad_id, batch_size)
        pol_rejected = sequence_logps(model, rejected_items, pad_id, batch_size)
    else:
        pol_chosen, pol_rejected = ref_chosen, ref_rejected

    hits: list[bool] = []
    base_hits: list[bool] = []
    margins: list[float] = []
    base_margins: list[float] = []
    by_principle: dict[str, list[bool]] = defaultdict(list)
    base_by_principle: dict[str, list[bool]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        reward_chosen = beta * (pol_chosen[i] - ref_chosen[i])
        reward_rejected = beta * (pol_rejected[i] - ref_rejected[i])
        hit = reward_chosen > reward_rejected
        base_hit = ref_chosen[i] > ref_rejected[i]
        hits.append(hit)
        base_hits.append(base_hit)
        margins.append(reward_chosen - reward_rejected)
        base_margins.append(ref_chosen[i] - ref_rejected[i])
        by_principle[pair.violated].append(hit)
        base_by_principle[pair.violated].append(base_hit)
    return EvalResult(
        preference_accuracy=_rate(hits),
        mean_reward_margin=sum(margins) / len(margins),
        n=len(pairs),
        per_principle={k: _rate(v) for k, v in sorted(by_principle.items())},
        base_preference_accuracy=_rate(base_hits),
        base_mean_logp_margin=sum(base_margins) / len(base_margins),
        base_per_principle={k: _rate(v) for k, v in sorted(base_by_principle.items())},
        beta=beta,
    )
