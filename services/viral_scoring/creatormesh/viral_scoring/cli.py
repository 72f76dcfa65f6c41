"""`creatormesh viral_scoring ...`: train and evaluate the ViralScore models, score a CSV, build and apply the
virality-weighted LM training set, compare A/B arms."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR

app = typer.Typer(help="Viral scoring: train, evaluate, batch-score, LM training set, weighted LM fine-tune, A/B.")

DataDir = Annotated[Path, typer.Option(help="Directory of YouTube-trending-layout CSVs (video_id, title, ...).")]
ModelDir = Annotated[Path | None, typer.Option(help="Checkpoint directory (default: settings model_path).")]


def _settings() -> Any:
    from creatormesh.common.settings import load
    from creatormesh.viral_scoring.settings import ViralScoringSettings

    return load(ViralScoringSettings)


def _scorer(model_dir: Path | None) -> Any:
    from creatormesh.common.embeddings import TextEmbedder
    from creatormesh.viral_scoring import checkpoint
    from creatormesh.viral_scoring.safety import SafetyRules
    from creatormesh.viral_scoring.scorer import Scorer

    s = _settings()
    embedder = TextEmbedder(s.embedder_path or None)
    rules = SafetyRules.load(Path(s.safety_rules_path) if s.safety_rules_path else None)
    ckpt = checkpoint.load(model_dir or Path(s.model_path))
    return Scorer(ckpt, rules, embedder.embed, top_fraction=s.top_fraction, embed_int8=embedder.int8().embed)


@app.command()
def train(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    model_dir: ModelDir = None,
    epochs: Annotated[int, typer.Option(help="Epoch budget (early stopping on validation MSE).")] = 80,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-3,
    dim: Annotated[int, typer.Option(help="Token width of the full model.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the channel split.")] = 0,
    init_seed: Annotated[int, typer.Option(help="Seed of the model initialisation and batch order.")] = 0,
    max_records: Annotated[int | None, typer.Option(help="Use only the first N videos (fast runs).")] = None,
) -> None:
    """Train the full and light models, evaluate them on the channel-grouped held-out split, save a checkpoint."""
    from creatormesh.viral_scoring.evaluate import format_report
    from creatormesh.viral_scoring.train import TrainConfig
    from creatormesh.viral_scoring.train import train as run

    out = model_dir or Path(_settings().model_path)
    meta = run(
        data_dir,
        out,
        TrainConfig(epochs=epochs, lr=lr, dim=dim, seed=seed, init_seed=init_seed, max_records=max_records),
    )
    typer.echo(f"{meta['version']} → {out} in {meta['seconds']:.0f} s")
    typer.echo(f"coefficients: {json.dumps({k: round(v, 3) for k, v in meta['coefficients'].items()})}")
    typer.echo(format_report(meta["evaluation"]))


@app.command()
def evaluate(
    model_dir: ModelDir = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data to evaluate on (default: what the checkpoint was trained on).")
    ] = None,
) -> None:
    """Re-run the held-out evaluation of a checkpoint (split grouped by channel, with the seeds it was trained
    with): MSE and Spearman of every model and baseline, content only and with behaviour."""
    from creatormesh.viral_scoring.evaluate import evaluate_checkpoint, format_report

    path = model_dir or Path(_settings().model_path)
    report = evaluate_checkpoint(path, data_dir)
    n = report["settings"]["content_only"]["full model"]["samples"]
    typer.echo(f"{path}: {n} held-out videos")
    typer.echo(format_report(report))


@app.command("score-csv")
def score_csv(
    src: Annotated[Path, typer.Argument(help="CSV with video_id, title, tags, channel_title, category_id, ...")],
    out: Annotated[Path, typer.Option(help="Output CSV (video_id, v, subscores, safety).")] = Path("scores.csv"),
    model_dir: ModelDir = None,
    mode: Annotated[str, typer.Option(help="full, two_stage, light or quantized.")] = "full",
) -> None:
    """Score every row of a CSV with whichever inputs it has."""
    from creatormesh.viral_scoring.batch import score_csv as run
    from creatormesh.viral_scoring.scorer import Mode

    try:
        n = run(_scorer(model_dir), src, out, Mode(mode))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"scored {n} items → {out}")


@app.command("export-lm-set")
def export_lm_set(
    src: Annotated[Path, typer.Argument(help="CSV of posts/scripts to score (same columns as score-csv).")],
    out: Annotated[Path, typer.Option(help="JSONL training set {text, v, weight}.")] = Path("lm-train.jsonl"),
    lam: Annotated[float, typer.Option("--lambda", help="Weight w = 1 + lambda * V.")] = 1.0,
    min_v: Annotated[float, typer.Option(help="Keep only texts with V >= this.")] = 0.0,
    top_fraction: Annotated[float, typer.Option(help="Keep the best fraction by V.")] = 1.0,
    model_dir: ModelDir = None,
) -> None:
    """High-value sample selector (seed, Entry Point A): score texts and write them with w = 1 + lambda * V."""
    from creatormesh.viral_scoring.batch import read_items
    from creatormesh.viral_scoring.lm_training import select_high_value, write_training_set
    from creatormesh.viral_scoring.scorer import Mode

    items = read_items(src)
    scores = _scorer(model_dir).score(items, Mode.FULL)
    texts = [(it.transcript or it.title, s.v) for it, s in zip(items, scores, strict=True) if not s.safety.blocked]
    samples = select_high_value(texts, lam=lam, min_v=min_v, top_fraction=top_fraction)
    write_training_set(samples, out)
    typer.echo(
        f"{len(samples)} of {len(items)} texts → {out} (weights {samples[-1].weight:.2f}..{samples[0].weight:.2f})"
    )


@app.command("finetune-lm")
def finetune_lm(
    model: Annotated[Path, typer.Argument(help="Causal LM directory (transformers, safetensors).")],
    data: Annotated[Path, typer.Argument(help="JSONL from export-lm-set.")],
    out: Annotated[Path, typer.Option(help="Where to save the fine-tuned model or adapter.")] = Path("lm-finetuned"),
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 1,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 5e-4,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 8,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank (0 = full fine-tune).")] = 0,
) -> None:
    """Fine-tune a causal LM with the virality-weighted loss (seed 6.2): mean over samples of w_i * CE_i."""
    from creatormesh.viral_scoring.lm_training import read_training_set, weighted_finetune

    result = weighted_finetune(
        model, read_training_set(data), out, epochs=epochs, lr=lr, batch_size=batch_size, lora_rank=lora_rank
    )
    typer.echo(f"{result.steps} steps, loss {result.first_loss:.3f} → {result.last_loss:.3f}; saved {result.out_dir}")


@app.command("ab-report")
def ab_report(
    arm_a: Annotated[str, typer.Option(help="Baseline arm, e.g. control.")] = "control",
    arm_b: Annotated[str, typer.Option(help="Treatment arm, e.g. viral.")] = "viral",
    log: Annotated[Path | None, typer.Option(help="Interactions CSV/JSONL (default: the service's Redis log).")] = None,
    unit: Annotated[str, typer.Option(help="Unit of analysis: item or user.")] = "item",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Compare two arms' KPIs (plays, watch-through, shares, rewatches, conversion): bootstrap CI and Welch's t-test."""
    from creatormesh.viral_scoring.abtest import compare, format_table, read_interactions

    if log is None:
        log = Path(".creatormesh/viral_scoring/interactions.jsonl")
        n = asyncio.run(_export_labels(log))
        typer.echo(f"{n} logged interactions exported → {log}")
    try:
        rows = compare(read_interactions(log), arm_a, arm_b, unit=unit, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(format_table(rows))


async def _export_labels(path: Path) -> int:
    from creatormesh.common.redis_pool import redis_client
    from creatormesh.common.settings import KitSettings, load
    from creatormesh.viral_scoring.label_log import LabelLog

    redis = redis_client(load(KitSettings).redis_url)
    try:
        return await LabelLog(redis, _settings().redis_prefix).export(path)
    finally:
        await redis.aclose()
