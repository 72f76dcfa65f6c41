"""`creatormesh video ...`: build the tiny test pipeline, generate videos locally with the service's engine, and
train/register LoRA adapters from the recorded picks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Text-to-video: tiny pipelines, local generation, LoRA retraining from picks.")


@app.command("build-tiny")
def build_tiny_cmd(
    out: Annotated[Path, typer.Argument(help="Directory to write (must not exist or be empty).")],
    kind: Annotated[str, typer.Option(help="wan (WanPipeline) or cogvideox (CogVideoXPipeline).")] = "wan",
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
) -> None:
    """Build a tiny, randomly initialised pipeline and save it as a normal local model directory."""
    from .builder import build_tiny

    try:
        path = build_tiny(out, kind=kind, seed=seed)
    except (ValueError, FileExistsError) as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    typer.echo(f"{kind} pipeline written to {path} ({size / 1e6:.1f} MB)")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Text prompt.")],
    model_dir: Annotated[Path, typer.Option(help="Local diffusers model directory.")],
    out_dir: Annotated[Path, typer.Option(help="Where the MP4s go.")] = Path("videos"),
    candidates: Annotated[int, typer.Option(min=1, max=8, help="Videos, each with its own prompt variation.")] = 1,
    frames: Annotated[int, typer.Option(min=1, help="Frames per video.")] = 16,
    fps: Annotated[int, typer.Option(min=1, max=60)] = 8,
    width: Annotated[int, typer.Option(help="0: the model's default.")] = 0,
    height: Annotated[int, typer.Option(help="0: the model's default.")] = 0,
    steps: Annotated[int, typer.Option(help="0: the model's default.")] = 0,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    device: Annotated[str, typer.Option()] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
) -> None:
    """Generate videos in this process with the service's engine (no server, queue or database)."""
    from dataclasses import replace

    from tqdm import tqdm  # type: ignore[import-untyped]

    from creatormesh.common.errors import InvalidArgument

    from .engine import Engine, ModelError, write_mp4
    from .limits import GenerationRequest, validate
    from .prompts import rewrites

    try:
        engine = Engine.load(model_dir, device=device, dtype=dtype)
        request = GenerationRequest(prompt, "", frames, fps, width, height, steps, None, seed)
        params = validate(request, engine.limits)
    except (ModelError, InvalidArgument, ValueError) as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    for i, text in enumerate(rewrites(params.prompt, candidates)):
        started = time.perf_counter()
        with tqdm(total=params.steps, desc=f"video {i + 1}/{candidates}", unit="step") as bar:

            def step(_step: int, _total: int, bar: Any = bar) -> None:
                bar.update(1)

            video = engine.generate(replace(params, prompt=text, seed=(params.seed + i) % 2**32), on_step=step)
        path = write_mp4(video, out_dir / f"video-{i}.mp4")
        typer.echo(f"{path}  {len(video.frames)} frames, {time.perf_counter() - started:.1f} s  {text!r}")


@app.command("train-lora")
def train_lora_cmd(
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 500,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank (a continued adapter keeps its own).")] = 16,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    width: Annotated[int, typer.Option(help="Training width (multiple of 16).")] = 832,
    height: Annotated[int, typer.Option(help="Training height (multiple of 16).")] = 480,
    frames: Annotated[int, typer.Option(help="Training frames (4k+1).")] = 17,
    batch_size: Annotated[int, typer.Option(min=1)] = 1,
    gradient_accumulation: Annotated[int, typer.Option(min=1)] = 1,
    mixed_precision: Annotated[str, typer.Option(help="no, bf16 or fp16.")] = "no",
    holdout: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of the newest picks held out.")] = 0.2,
    tolerance: Annotated[float, typer.Option(min=0.0, help="Register if held-out loss <= parent x (1 + this).")] = 0.0,
    activate: Annotated[bool, typer.Option(help="Make a registered adapter the default for new jobs.")] = False,
    mlflow_uri: Annotated[str, typer.Option(help="MLflow tracking URI (empty: a local store in the work dir).")] = "",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Fine-tune a LoRA adapter on every pick so far, compare it with the active adapter on the newest picks, and
    register it only if it is not worse. Exit status: 0 registered, 3 trained but not registered, 2 refused (bad
    arguments, too few picks, a model it cannot train), 1 a crash. Reads the service's settings (database, storage,
    model) from the environment; `accelerate launch -m creatormesh.common video train-lora ...` spreads it over
    GPUs."""
    from tqdm import tqdm

    from creatormesh.common.errors import DomainError
    from creatormesh.common.settings import load
    from creatormesh.common.storage import storage_from

    from .lora import MlflowTracker, TrainConfig, mlflow_available
    from .retrain import retrain
    from .settings import VideoDiffusionSettings
    from .store import JobStore, migrate
    from .trainer import EXIT_NOT_REGISTERED

    s = load(VideoDiffusionSettings)
    config = TrainConfig(
        rank=rank, learning_rate=learning_rate, steps=steps, batch_size=batch_size,
        gradient_accumulation=gradient_accumulation, width=width, height=height, num_frames=frames, seed=seed,
        mixed_precision=mixed_precision,
    )  # fmt: skip
    migrate(s.database_url)
    store = JobStore(s.database_url)
    storage = storage_from(s)
    work = Path(s.work_dir) / "lora"
    tracker = None
    if mlflow_available():
        tracker = MlflowTracker(
            "video_diffusion.lora", tracking_uri=mlflow_uri or None, store_dir=work / "mlflow", run_name=f"seed-{seed}"
        )
    model_dir = Path(s.model_dir)
    try:
        with tqdm(total=steps, desc="LoRA", unit="step") as bar:

            def step(_index: int, _total: int, loss: float, bar: Any = bar) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")

            outcome = retrain(
                store, storage, model_dir, work, config, base_model=s.model_name or model_dir.name,
                holdout=holdout, tolerance=tolerance, tracker=tracker, on_step=step,
            )  # fmt: skip
    except (DomainError, ValueError, NotImplementedError) as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    finally:
        if tracker is not None:
            tracker.finish()
    typer.echo(
        f"{outcome.version}: {outcome.train_samples} training / {outcome.eval_samples} held-out picks, "
        f"{outcome.train_seconds:.1f} s; {outcome.reason}"
    )
    if outcome.registered and activate:
        store.set_active(outcome.version)
        typer.echo(f"{outcome.version} is now the active adapter for new jobs")
    store.close()
    if not outcome.registered:
        raise typer.Exit(EXIT_NOT_REGISTERED)
