"""`creatormesh ranking ...`: train the models, print the evaluation table, export top-K recommendations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from creatormesh.ranking.data import DEFAULT_DATA_DIR

app = typer.Typer(help="Ranking service: train, evaluate and export the recommendation models.")

DataDir = Annotated[
    Path, typer.Option(help="Directory in the MovieLens CSV layout (ratings.csv, movies.csv, tags.csv).")
]
MaxUsers = Annotated[int | None, typer.Option(help="Use only the first N users by id (fast runs).")]


def _default_model_dir() -> Path:
    from creatormesh.common.settings import load
    from creatormesh.ranking.settings import RankingSettings

    return Path(load(RankingSettings).model_path)


@app.command()
def train(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    model_dir: Annotated[Path | None, typer.Option(help="Checkpoint directory (default: settings model_path).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epoch budget of both models (default: each model's own).")] = None,
    batch_size: Annotated[int, typer.Option(help="Two-tower batch size (in-batch negatives).")] = 512,
    lr: Annotated[float, typer.Option(help="Two-tower learning rate.")] = 2e-3,
    dim: Annotated[int, typer.Option(help="Embedding dimension of both models.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    max_users: MaxUsers = None,
    holdout: Annotated[
        int, typer.Option(help="Interactions per user held out for test (and again for validation).")
    ] = 5,
    device: Annotated[str, typer.Option(help="torch device: cpu or cuda.")] = "cpu",
) -> None:
    """Train the two-tower and sequence models and write safetensors + metadata.json."""
    from creatormesh.ranking.train import TrainConfig
    from creatormesh.ranking.train import train as run

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        dim=dim,
        seed=seed,
        max_users=max_users,
        holdout=holdout,
        device=device,
    )
    result = run(data_dir, model_dir or _default_model_dir(), config)
    typer.echo(f"{result.version} → {result.path} in {result.seconds:.0f} s")
    for name, metrics in result.validation.items():
        typer.echo(f"  validation {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    typer.echo(f"  blend weights: {result.blend}")


@app.command()
def evaluate(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    model_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint to evaluate (absent: train a fresh one first).")
    ] = None,
    holdout: Annotated[int | None, typer.Option(help="Held-out interactions per user (default: the model's).")] = None,
    max_users: MaxUsers = None,
    seed: Annotated[int, typer.Option(help="Random seed when training.")] = 0,
) -> None:
    """Recall@10/50, NDCG@10, coverage@10 and ILD@10 on the test split for every baseline and model."""
    from creatormesh.ranking.evaluate import describe
    from creatormesh.ranking.evaluate import evaluate as run
    from creatormesh.ranking.train import TrainConfig

    start = time.perf_counter()
    table = run(data_dir, model_dir, holdout, TrainConfig(max_users=max_users, seed=seed))
    typer.echo(describe(table))
    typer.echo(f"\ntotal {time.perf_counter() - start:.0f} s")


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="CSV file to write (user_id,item_id,rank).")],
    users: Annotated[str | None, typer.Option(help="Comma-separated user ids (default: every user).")] = None,
    k: Annotated[int, typer.Option(help="Items per user.", min=1)] = 50,
    model_dir: Annotated[Path | None, typer.Option(help="Checkpoint directory (default: settings model_path).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Top-K recommendations of the learned blend per user, excluding what each user has already seen."""
    from creatormesh.ranking.export import export_recommendations

    wanted = [u.strip() for u in users.split(",") if u.strip()] if users else None
    path = model_dir or _default_model_dir()
    if not (path / "metadata.json").is_file():
        raise typer.BadParameter(
            f"no checkpoint in {path}; run `creatormesh ranking train` first", param_hint="--model-dir"
        )
    rows = export_recommendations(out, path, data_dir, wanted, k)
    typer.echo(f"{rows} rows → {out}")


@app.command("ab-report")
def ab_report(
    experiment: Annotated[str, typer.Option(help="Experiment name (RankForYouResponse.experiment).")] = "overdrive",
) -> None:
    """Per-arm outcomes of an A/B experiment from the interactions the service consumed (Redis)."""
    import asyncio

    from creatormesh.common.settings import KitSettings, load
    from creatormesh.ranking.experiments import ArmLog
    from creatormesh.ranking.settings import RankingSettings

    async def outcomes() -> list[Any]:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(load(KitSettings).redis_url)
        try:
            return await ArmLog(client, load(RankingSettings).redis_prefix).outcomes(experiment)
        finally:
            await client.aclose()

    rows = asyncio.run(outcomes())
    if not rows:
        typer.echo(f"no interactions recorded for experiment {experiment!r}")
        return
    typer.echo("| arm | users | interactions | engaged share | watch seconds |\n|---|---:|---:|---:|---:|")
    for o in rows:
        typer.echo(f"| {o.arm} | {o.users} | {o.interactions} | {o.engagement_rate:.3f} | {o.watch_seconds:.0f} |")
