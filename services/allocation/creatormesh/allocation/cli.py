"""`creatormesh allocation ...`: the fairness report and the DPO policy commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Allocation service: fairness report, DPO policy dataset/training/evaluation.")


@app.command()
def report(
    creators: Annotated[int, typer.Option(help="Simulated creators.")] = 5000,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    plot: Annotated[Path, typer.Option(help="Where to save the plot.")] = Path("docs/services/allocation-fairness.png"),
) -> None:
    """Engine vs proportional-to-views on a simulated population: Gini, newcomer and niche shares, per principle."""
    from creatormesh.allocation.report import run

    result = run(n=creators, seed=seed, plot=plot)
    typer.echo(result.table())
    typer.echo(f"\nplot: {plot}")


@app.command()
def dataset(
    out: Annotated[Path, typer.Option(help="Output folder for train.jsonl and heldout.jsonl.")] = Path(
        ".creatormesh/policy/data"
    ),
    pairs: Annotated[int, typer.Option(help="Preference pairs in all.")] = 600,
    held_out: Annotated[int, typer.Option(help="Pairs held out (split by creator).")] = 150,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Generate the fairness preference dataset (chosen = engine, rejected = a named principle violated)."""
    from creatormesh.allocation.policy.dataset import write_dataset

    files = write_dataset(out, pairs, held_out, seed)
    typer.echo(f"{files.train_path} ({files.n_train} pairs), {files.heldout_path} ({files.n_heldout} pairs)")
    typer.echo(f"labels: {files.counts}")


@app.command("build-tiny-model")
def build_tiny_model(
    out: Annotated[Path, typer.Option(help="Model directory to write.")] = Path(".creatormesh/policy/tiny-model"),
    data: Annotated[Path, typer.Option(help="train.jsonl whose text trains the tokenizer.")] = Path(
        ".creatormesh/policy/data/train.jsonl"
    ),
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """A tiny randomly initialised Qwen2 model with an offline-built tokenizer (for CPU runs and tests)."""
    from creatormesh.allocation.policy.dataset import read_jsonl
    from creatormesh.allocation.policy.tiny import build_tiny_model as build
    from creatormesh.allocation.policy.tiny import corpus_from_pairs

    corpus = corpus_from_pairs(read_jsonl(data)) if data.exists() else None
    typer.echo(f"tiny model: {build(out, seed, corpus=corpus)}")


@app.command("train-policy")
def train_policy(
    model: Annotated[Path, typer.Option(help="Base causal LM directory (Qwen2.5-1.5B-Instruct in production).")],
    data: Annotated[Path, typer.Option(help="train.jsonl from `dataset`.")],
    out: Annotated[Path, typer.Option(help="Where to save the LoRA adapter.")] = Path(".creatormesh/policy/adapter"),
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 300,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    batch_size: Annotated[int, typer.Option(help="Pairs per step.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """DPO with TRL's DPOTrainer and a PEFT LoRA adapter; saves safetensors + metadata."""
    from creatormesh.allocation.policy.train import train

    result = train(model, data, out, steps, lr=lr, lora_rank=lora_rank, batch_size=batch_size, seed=seed)
    typer.echo(f"{result.version}: {result.metrics}")


@app.command("evaluate-policy")
def evaluate_policy(
    model: Annotated[Path, typer.Option(help="Base model directory.")],
    data: Annotated[Path, typer.Option(help="heldout.jsonl from `dataset`.")],
    adapter: Annotated[Path | None, typer.Option(help="Trained adapter (omit for the base model).")] = None,
    share_only: Annotated[bool, typer.Option(help="Pairs that differ only in the share.")] = False,
) -> None:
    """Preference accuracy and reward margin on held-out pairs, trained vs base."""
    import json

    from creatormesh.allocation.policy.dataset import read_jsonl
    from creatormesh.allocation.policy.dataset import share_only as only_shares
    from creatormesh.allocation.policy.evaluate import evaluate

    pairs = read_jsonl(data)
    result = evaluate(model, adapter, only_shares(pairs) if share_only else pairs)
    typer.echo(json.dumps(result.as_dict(), indent=2))
