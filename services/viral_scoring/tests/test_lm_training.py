"""Entry Point A: high-value selection, the JSONL training set, the seed 6.2 weighted loss, weighted fine-tuning."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from creatormesh.viral_scoring.lm_training import (
    WeightedSample,
    read_training_set,
    select_high_value,
    weighted_finetune,
    weighted_lm_loss,
    write_training_set,
)
from creatormesh.viral_scoring.tiny_lm import build_tiny_lm, synthetic_titles


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), synthetic_titles(400, seed=1), seed=0)


def _mean_token_log_prob(model_dir: Path, texts: Sequence[str]) -> float:
    """Mean over texts of each text's mean next-token log-prob (text + eos), by a plain forward pass."""
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    model.eval()
    enc = tok([t + tok.eos_token for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, enc["input_ids"][:, 1:, None])[..., 0]
    mask = enc["attention_mask"][:, 1:].float()
    return float(((lp * mask).sum(1) / mask.sum(1)).mean())


def test_weighted_loss_matches_hand_computation() -> None:
    # vocab 3, two samples of 3 tokens; sample 1 has its last token padded.
    logits = torch.tensor(
        [
            [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]],
            [[0.0, 0.0, 1.0], [1.0, 2.0, 0.0], [9.0, 9.0, 9.0]],
        ]
    )
    labels = torch.tensor([[0, 1, 2], [2, 0, 1]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    weights = torch.tensor([2.0, 0.5])

    def ce(row: list[float], target: int) -> float:
        return -(row[target] - math.log(sum(math.exp(x) for x in row)))

    s0 = (ce([2.0, 0.0, 0.0], 1) + ce([0.0, 1.0, 0.0], 2)) / 2
    s1 = ce([0.0, 0.0, 1.0], 0) / 1
    expected = (2.0 * s0 + 0.5 * s1) / 2
    got = weighted_lm_loss(logits, labels, mask, weights)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_zero_weight_sample_gets_no_gradient() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    labels = torch.randint(0, 7, (2, 5))
    torch.autograd.backward(weighted_lm_loss(logits, labels, torch.ones(2, 5), torch.tensor([0.0, 1.0])))
    assert logits.grad is not None
    assert torch.count_nonzero(logits.grad[0]) == 0
    assert torch.count_nonzero(logits.grad[1]) > 0


def test_padding_is_ignored() -> None:
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 6)
    labels = torch.randint(0, 6, (1, 4))
    weights = torch.tensor([1.5])
    short = weighted_lm_loss(logits, labels, torch.ones(1, 4), weights)
    # two more positions of padding with arbitrary logits and labels change nothing
    padded_logits = torch.cat([logits, torch.randn(1, 2, 6) * 50], dim=1)
    padded_labels = torch.cat([labels, torch.tensor([[3, 5]])], dim=1)
    padded_mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    padded = weighted_lm_loss(padded_logits, padded_labels, padded_mask, weights)
    assert float(padded) == pytest.approx(float(short), rel=1e-6)
    # and -100 labels are ignored like padding
    ignored = weighted_lm_loss(padded_logits, torch.cat([labels, torch.tensor([[-100, -100]])], dim=1),
                               torch.ones(1, 6), weights)  # fmt: skip
    assert float(ignored) == pytest.approx(float(short), rel=1e-6)


def test_select_high_value_weights_filter_and_order() -> None:
    scored = [("a", 0.2), ("b", 0.9), ("c", 0.5), ("d", 0.05), ("e", 0.7)]
    got = select_high_value(scored, lam=2.0, min_v=0.1)
    assert [s.text for s in got] == ["b", "e", "c", "a"]
    assert [s.weight for s in got] == pytest.approx([2.8, 2.4, 2.0, 1.4])
    top = select_high_value(scored, lam=1.0, top_fraction=0.4)
    assert [(s.text, s.v) for s in top] == [("b", 0.9), ("e", 0.7)]
    assert [s.weight for s in top] == pytest.approx([1.9, 1.7])
    with pytest.raises(ValueError, match="top_fraction"):
        select_high_value(scored, top_fraction=0.0)


def test_training_set_round_trip_and_bad_line(tmp_path: Path) -> None:
    samples = [WeightedSample("Why we built a robot 🤖", 0.75, 1.75), WeightedSample('say "hi"\nthere', 0.0, 1.0)]
    path = tmp_path / "set.jsonl"
    write_training_set(samples, path)
    assert read_training_set(path) == samples
    path.write_text(path.read_text() + '{"text": "ok", "v": 0.5}\n')
    with pytest.raises(ValueError, match=r"set\.jsonl:3: 'weight' must be a finite number"):
        read_training_set(path)
    path.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"set\.jsonl:1: not JSON"):
        read_training_set(path)


def test_weighted_finetune_lowers_loss(tiny_lm: Path, tmp_path: Path) -> None:
    samples = select_high_value([(t, 0.5) for t in synthetic_titles(48, seed=3)], lam=1.0)
    result = weighted_finetune(tiny_lm, samples, tmp_path / "out", epochs=2, lr=1e-3, progress=False)
    assert result.steps == 12
    assert result.last_loss < 0.8 * result.first_loss
    assert (tmp_path / "out" / "model.safetensors").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out", local_files_only=True)
    assert reloaded.config.vocab_size == len(AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True))


def test_weighted_finetune_lora_saves_adapter(tiny_lm: Path, tmp_path: Path) -> None:
    samples = [WeightedSample(t, 1.0, 2.0) for t in synthetic_titles(16, seed=4)]
    result = weighted_finetune(tiny_lm, samples, tmp_path / "lora", lr=5e-3, lora_rank=4, progress=False)
    assert result.last_loss < result.first_loss
    assert (tmp_path / "lora" / "adapter_config.json").exists()
    assert (tmp_path / "lora" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "lora" / "model.safetensors").exists()


def test_high_weight_texts_gain_more_log_prob(tiny_lm: Path, tmp_path: Path) -> None:
    """The point of Entry Point A: same data and schedule, only weights differ, so high-V texts are learned more.

    Run twice with the roles of the two groups swapped, so a group that is simply easier can't pass the test.
    """
    texts = synthetic_titles(64, seed=7)
    group_a, group_b = texts[:32], texts[32:]
    before = {"a": _mean_token_log_prob(tiny_lm, group_a), "b": _mean_token_log_prob(tiny_lm, group_b)}
    for high, low in (("a", "b"), ("b", "a")):
        groups = {"a": group_a, "b": group_b}
        scored = [(t, 0.95) for t in groups[high]] + [(t, 0.0) for t in groups[low]]
        samples = select_high_value(scored, lam=9.0)  # weights 9.55 vs 1.0
        out = weighted_finetune(tiny_lm, samples, tmp_path / high, epochs=3, lr=1e-3, progress=False, seed=0)
        gain_high = _mean_token_log_prob(out.out_dir, groups[high]) - before[high]
        gain_low = _mean_token_log_prob(out.out_dir, groups[low]) - before[low]
        assert gain_low > 0.5  # both groups are learned ...
        assert gain_high > gain_low + 0.1  # ... the high-weight one clearly more
