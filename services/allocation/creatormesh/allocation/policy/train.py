"""DPO training of the allocation policy: TRL's DPOTrainer with a PEFT LoRA adapter
on a causal LM loaded from a local directory (Qwen2.5-1.5B-Instruct on a GPU in
production, the tiny model of :mod:`.tiny` here). Saves the adapter (safetensors)
and ``policy_metadata.json`` (base model, steps, metrics, dataset hash, version).

``trl``, ``peft`` and ``datasets`` (the ``train`` extra) are imported inside
:func:`train` only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from creatormesh.allocation.policy.dataset import PreferencePair, read_jsonl, to_dpo_records

log = logging.getLogger(__name__)

METADATA_FILE = "policy_metadata.json"
ADAPTER_FILE = "adapter_model.safetensors"
#: Attention and MLP projections of Qwen2 (and Llama-like) decoders.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: Metrics TRL logs that the metadata keeps.
TRACKED = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected", "learning_rate")


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter went and how training went."""

    adapter_dir: Path
    metadata_path: Path
    version: str
    steps: int
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    dataset_sha256: str = ""
    n_pairs: int = 0
    seconds: float = 0.0


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_metadata(adapter_dir: str | Path) -> dict[str, Any]:
    """The metadata :func:`train` saved next to an adapter (empty if there is none)."""
    path = Path(adapter_dir) / METADATA_FILE
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def policy_version(adapter_dir: str | Path) -> str:
    """The adapter's version string (``dpo-<sha256 prefix>``), for ledgers and logs."""
    version = load_metadata(adapter_dir).get("version")
    if isinstance(version, str) and version:
        return version
    adapter = Path(adapter_dir) / ADAPTER_FILE
    return f"dpo-{sha256_file(adapter)[:12]}" if adapter.is_file() else "dpo-unknown"


def _history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    rows = []
    for entry in log_history:
        if "loss" not in entry and "rewards/accuracies" not in entry:
            continue
        row = {"step": float(entry.get("step", 0))}
        row.update({k: float(entry[k]) for k in TRACKED if isinstance(entry.get(k), int | float)})
        rows.append(row)
    return rows


def train(
    model_dir: str | Path,
    dataset_path: str | Path,
    out_dir: str | Path,
    steps: int,
    lr: float = 2e-4,
    lora_rank: int = 16,
    batch_size: int = 8,
    seed: int = 0,
    beta: float = 0.1,
    lora_alpha: int | None = None,
    lora_dropout: float = 0.0,
    max_length: int = 1024,
    logging_steps: int | None = None,
    warmup_ratio: float = 0.05,
    progress: bool = True,
) -> TrainResult:
    """Train a LoRA adapter with DPO on the preference pairs in ``dataset_path`` (JSONL
    written by :func:`~.dataset.write_jsonl`) and save it with its metadata in ``out_dir``."""
    import torch
    from datasets import Dataset  # type: ignore[import-untyped]
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    started = time.monotonic()
    model_path, data_path, out = Path(model_dir), Path(dataset_path), Path(out_dir)
    pairs: list[PreferencePair] = read_jsonl(data_path)
    if not pairs:
        raise ValueError(f"{data_path} holds no preference pairs")
    out.mkdir(parents=True, exist_ok=True)

    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.bfloat16 if bf16 else torch.float32, local_files_only=True
    )
    peft_config = LoraConfig(
        r=lora_rank,
        lora_alpha=lora_alpha if lora_alpha is not None else 2 * lora_rank,
        lora_dropout=lora_dropout,
        target_modules=list(LORA_TARGETS),
        task_type="CAUSAL_LM",
    )
    args = DPOConfig(
        output_dir=str(out / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        lr_scheduler_type="linear",
        warmup_steps=round(warmup_ratio * steps),
        beta=beta,
        max_length=max_length,
        bf16=bf16,
        use_cpu=not gpu,
        activation_checkpointing=gpu,  # saves memory on the real model; only slows the tiny one down
        report_to="none",
        logging_steps=logging_steps or max(1, steps // 20),
        save_strategy="no",
        seed=seed,
        data_seed=seed,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    train_dataset = Dataset.from_list(to_dpo_records(pairs))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    output = trainer.train()
    trained: Any = trainer.model  # a peft.PeftModel
    trained.save_pretrained(str(out))
    if (out / "trainer").is_dir() and not any((out / "trainer").iterdir()):
        (out / "trainer").rmdir()
    history = _history(trainer.state.log_history)
    last = next((row for row in reversed(history) if "rewards/accuracies" in row), history[-1] if history else {})
    metrics = {k: v for k, v in last.items() if k != "step"}
    metrics["train_loss"] = float(output.training_loss)
    metrics["train_runtime_s"] = float(output.metrics.get("train_runtime", 0.0))

    dataset_sha = sha256_file(data_path)
    adapter_sha = sha256_file(out / ADAPTER_FILE)
    version = f"dpo-{adapter_sha[:12]}"
    seconds = time.monotonic() - started
    metadata = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": {
            "path": str(model_path.resolve()),
            "model_type": getattr(model.config, "model_type", ""),
            "config_sha256": sha256_file(model_path / "config.json") if (model_path / "config.json").is_file() else "",
        },
        "adapter": {
            "file": ADAPTER_FILE,
            "sha256": adapter_sha,
            "lora_rank": lora_rank,
            "lora_alpha": peft_config.lora_alpha,
            "target_modules": list(LORA_TARGETS),
        },
        "training": {
            "steps": steps,
            "lr": lr,
            "batch_size": batch_size,
            "beta": beta,
            "seed": seed,
            "max_length": max_length,
            "device": "cuda" if gpu else "cpu",
            "bf16": bf16,
        },
        "dataset": {"path": str(data_path.resolve()), "sha256": dataset_sha, "n_pairs": len(pairs)},
        "metrics": metrics,
        "history": history,
        "seconds": round(seconds, 2),
        "libraries": _versions(),
    }
    metadata_path = out / METADATA_FILE
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")
    log.info("policy %s trained in %.1f s: %s", version, seconds, metrics)
    return TrainResult(out, metadata_path, version, steps, metrics, history, dataset_sha, len(pairs), seconds)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "trl", "peft", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = ""
    return out
