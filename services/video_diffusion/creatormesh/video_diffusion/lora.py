"""LoRA fine-tuning of the Wan transformer on prompt-video pairs, its evaluation, and hot-loading adapters.

:func:`train_lora` trains a PEFT LoRA adapter with Wan's own objective (rectified flow matching) under
``accelerate`` — one process on the CPU or one GPU, or many with ``accelerate launch --multi_gpu`` / ``torchrun``,
unchanged — and saves it in diffusers' LoRA format (``pipe.load_lora_weights(adapter_dir)`` reads it) with an
``adapter.json`` beside. :func:`evaluate_adapter` gives the flow-matching loss on held-out pairs with fixed noise and
timesteps, so two adapters (or the base model) compare. :func:`load_adapter` / :func:`unload_adapter` switch the
adapter of an already loaded pipeline. Runs and metrics go to a :class:`Tracker` (:class:`MlflowTracker`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional

from creatormesh.common.errors import require
from creatormesh.common.media import read_frames

from .engine import ModelError, pipeline_kind

log = logging.getLogger(__name__)

ADAPTER_INFO = "adapter.json"
WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
#: The attention projections of every WanTransformer3DModel block (self- and cross-attention).
WAN_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
#: Wan's text length at inference (WanPipeline's default max_sequence_length): training uses the same padding.
WAN_TEXT_LENGTH = 512
MIXED_PRECISIONS = ("no", "bf16", "fp16")
TIMESTEP_SAMPLINGS = ("logit_normal", "uniform")

#: ``on_step(step, total, loss)`` after each optimizer step (1-based).
TrainCallback = Callable[[int, int, float], None]


class UnsupportedModel(NotImplementedError):
    """The model kind has no training objective here (only Wan trains; CogVideoX would need v-prediction DDIM)."""


# --------------------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Sample:
    """One training pair: a prompt and the MP4 (as written by ``engine.write_mp4``) that should follow from it."""

    prompt: str
    video_path: Path


def read_video(path: Path) -> npt.NDArray[np.uint8]:
    """All frames of a video file as uint8 ``[T, H, W, 3]`` (decoded by the kit's ffmpeg)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    frames: npt.NDArray[np.uint8] = read_frames(path)
    return frames


def video_tensor(path: Path, width: int, height: int, num_frames: int) -> torch.Tensor:
    """A video as the VAE takes it: float32 ``[3, num_frames, height, width]`` in [-1, 1].

    The first ``num_frames`` frames are kept (a shorter video is stretched by repeating frames evenly); each frame is
    scaled to cover ``width`` x ``height`` (aspect ratio kept) and centre-cropped.
    """
    frames = read_video(path)
    count = len(frames)
    if count >= num_frames:
        picked = frames[:num_frames]
    else:
        picked = frames[np.linspace(0, count - 1, num_frames).round().astype(np.int64)]
    video = torch.from_numpy(np.ascontiguousarray(picked)).permute(0, 3, 1, 2).float() / 255.0  # [T, 3, H, W]
    src_h, src_w = video.shape[-2:]
    scale = max(width / src_w, height / src_h)
    size = (max(height, round(src_h * scale)), max(width, round(src_w * scale)))
    if size != (src_h, src_w):
        video = functional.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    video = video[:, :, top : top + height, left : left + width].clamp(0.0, 1.0)
    return (video * 2.0 - 1.0).permute(1, 0, 2, 3).contiguous()


# --------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TrainConfig:
    """LoRA training settings. ``steps`` counts optimizer updates (each of ``batch_size`` x
    ``gradient_accumulation`` samples per process). The defaults suit a GPU; use small sizes on the CPU."""

    rank: int = 16
    #: LoRA alpha (the update is scaled by alpha / rank); None: equal to ``rank``
    alpha: float | None = None
    learning_rate: float = 1e-4
    steps: int = 500
    batch_size: int = 1
    gradient_accumulation: int = 1
    width: int = 832
    height: int = 480
    num_frames: int = 17
    seed: int = 0
    target_modules: tuple[str, ...] = WAN_TARGET_MODULES
    #: "no" (CPU, float32), "bf16" or "fp16" (GPU autocast; frozen base weights stored in that dtype)
    mixed_precision: str = "no"
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    #: how training timesteps are drawn: "logit_normal" (SD3/Wan fine-tuning practice) or "uniform"
    timestep_sampling: str = "logit_normal"
    #: timestep shift applied to the sampled sigmas; None: the pipeline scheduler's own ``shift``
    flow_shift: float | None = None
    #: fixed timesteps (evenly spaced, shifted) per sample in :func:`evaluate_adapter`
    eval_timesteps: int = 4
    gradient_checkpointing: bool = False

    @property
    def lora_alpha(self) -> float:
        """The effective LoRA alpha."""
        return float(self.rank if self.alpha is None else self.alpha)

    def check(self) -> None:
        """Raise InvalidArgument for the first setting out of range."""
        require(self.rank >= 1, "rank", f"must be at least 1, got {self.rank}")
        require(self.lora_alpha > 0, "alpha", f"must be positive, got {self.alpha}")
        require(self.learning_rate > 0, "learning_rate", f"must be positive, got {self.learning_rate}")
        require(self.steps >= 1, "steps", f"must be at least 1, got {self.steps}")
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        require(self.gradient_accumulation >= 1, "gradient_accumulation", "must be at least 1")
        for name in ("width", "height"):
            value = getattr(self, name)
            require(value > 0 and value % 16 == 0, name, f"must be a positive multiple of 16, got {value}")
        require(
            self.num_frames >= 1 and self.num_frames % 4 == 1,
            "num_frames",
            f"must be 4k+1 (1, 5, 9, ...), got {self.num_frames}",
        )
        require(len(self.target_modules) > 0, "target_modules", "must name at least one module")
        require(self.mixed_precision in MIXED_PRECISIONS, "mixed_precision", f"must be one of {MIXED_PRECISIONS}")
        require(self.timestep_sampling in TIMESTEP_SAMPLINGS, "timestep_sampling", f"one of {TIMESTEP_SAMPLINGS}")
        require(self.flow_shift is None or self.flow_shift > 0, "flow_shift", "must be positive")
        require(self.eval_timesteps >= 1, "eval_timesteps", f"must be at least 1, got {self.eval_timesteps}")


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    adapter_dir: Path
    steps: int
    #: mean loss of each optimizer step (over micro-batches and processes)
    losses: list[float]
    #: mean of the last (up to) 10 step losses
    final_loss: float
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------- tracking


class Tracker(Protocol):
    """Where a training run's parameters and metrics go."""

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...


class MlflowTracker:
    """One MLflow run. ``tracking_uri`` None: a local SQLite store ``store_dir/mlflow.db`` with artifacts under
    ``store_dir/artifacts`` (MLflow 3 keeps its plain ``file:`` store in maintenance mode and refuses it by default).
    Use as a context manager, or call :meth:`finish`. Needs ``mlflow-skinny`` (optional)."""

    def __init__(
        self,
        experiment: str,
        *,
        tracking_uri: str | None = None,
        store_dir: Path | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ModuleNotFoundError("MLflow tracking needs the mlflow-skinny package") from exc
        artifact_location: str | None = None
        if tracking_uri is None:
            if store_dir is None:
                raise ValueError("give a tracking_uri or a store_dir for the local store")
            store = Path(store_dir).resolve()
            store.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
            artifact_location = (store / "artifacts").as_uri()
        self.tracking_uri = tracking_uri
        self.client: Any = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
        self.experiment_id: str = str(experiment_id)
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags or {})
        self.run_id: str = str(run.info.run_id)
        self.finished = False

    def log_params(self, params: dict[str, Any]) -> None:
        """Log run parameters (values as strings)."""
        for key, value in params.items():
            self.client.log_param(self.run_id, key, value if isinstance(value, str | int | float) else str(value))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metric values at ``step``."""
        stamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key, float(value), timestamp=stamp, step=step or 0)

    def log_artifact(self, path: Path) -> None:
        """Attach a file to the run."""
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        """End the run ("FINISHED", "FAILED" or "KILLED"); idempotent."""
        if not self.finished:
            self.client.set_terminated(self.run_id, status=status)
            self.finished = True

    def __enter__(self) -> MlflowTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish("FINISHED" if exc_type is None else "FAILED")


def mlflow_available() -> bool:
    """Whether MLflow (mlflow or mlflow-skinny) can be imported."""
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------- objective


def require_wan(model_dir: Path) -> None:
    """Raise UnsupportedModel unless ``model_dir`` holds a Wan pipeline (ModelError if it holds no pipeline)."""
    kind = pipeline_kind(Path(model_dir))
    if kind != "wan":
        raise UnsupportedModel(
            f"LoRA training supports Wan pipelines only; {model_dir} holds a {kind} pipeline (CogVideoX trains with "
            "v-prediction DDIM, an objective not implemented here)"
        )


def _load_wan(model_dir: Path, base_dtype: torch.dtype = torch.float32) -> Any:
    """The WanPipeline in ``model_dir`` (VAE and text encoder float32, transformer in ``base_dtype``)."""
    import diffusers

    d: Any = diffusers
    model_dir = Path(model_dir)
    require_wan(model_dir)
    try:
        vae = d.AutoencoderKLWan.from_pretrained(model_dir, subfolder="vae", dtype=torch.float32, local_files_only=True)
        transformer = d.WanTransformer3DModel.from_pretrained(
            model_dir, subfolder="transformer", dtype=base_dtype, local_files_only=True
        )
        pipe = d.WanPipeline.from_pretrained(
            model_dir, vae=vae, transformer=transformer, dtype=torch.float32, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load the Wan pipeline from {model_dir}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.vae, pipe.text_encoder, pipe.transformer):
        part.requires_grad_(False)
        part.eval()
    return pipe


@torch.no_grad()
def _encode(pipe: Any, samples: Sequence[Sample], config: TrainConfig, device: torch.device) -> list[dict[str, Any]]:
    """Each sample's normalised VAE latents ``[C, F, h, w]`` and prompt embeddings ``[L, D]`` (on the CPU).

    Latents are normalised with the VAE's ``latents_mean``/``latents_std``, the inverse of what WanPipeline does
    before decoding; the posterior's mode is used, so encoding is deterministic.
    """
    vae = pipe.vae.to(device)
    text_encoder = pipe.text_encoder.to(device)
    z_dim = int(vae.config.z_dim)
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32, device=device).view(1, z_dim, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=torch.float32, device=device).view(1, z_dim, 1, 1, 1)
    encoded: list[dict[str, Any]] = []
    for sample in samples:
        require(sample.prompt.strip() != "", "samples.prompt", "is required")
        video = video_tensor(sample.video_path, config.width, config.height, config.num_frames)
        latents = vae.encode(video[None].to(device, vae.dtype)).latent_dist.mode().float()
        latents = (latents - mean) / std
        embeds, _ = pipe.encode_prompt(
            sample.prompt,
            do_classifier_free_guidance=False,
            max_sequence_length=WAN_TEXT_LENGTH,
            device=device,
            dtype=torch.float32,
        )
        encoded.append({"latents": latents[0].cpu(), "embeds": embeds[0].float().cpu()})
    vae.to("cpu")
    text_encoder.to("cpu")
    return encoded


def _shift(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """The flow-matching timestep shift (as FlowMatchEulerDiscreteScheduler applies it)."""
    return shift * sigmas / (1.0 + (shift - 1.0) * sigmas)


def _sample_sigmas(count: int, config: TrainConfig, shift: float, generator: torch.Generator) -> torch.Tensor:
    if config.timestep_sampling == "logit_normal":
        u = torch.sigmoid(torch.randn(count, generator=generator))
    else:
        u = torch.rand(count, generator=generator)
    return _shift(u.clamp(1e-3, 1.0 - 1e-3), shift)


def flow_matching_loss(
    transformer: Any, latents: torch.Tensor, embeds: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Wan's rectified-flow loss: x_t = (1 - sigma) x0 + sigma noise; the transformer, given x_t and timestep
    sigma * 1000, predicts the velocity noise - x0; mean squared error."""
    sig = sigmas.view(-1, *([1] * (latents.ndim - 1))).to(latents.dtype)
    noisy = (1.0 - sig) * latents + sig * noise
    prediction = transformer(
        hidden_states=noisy, timestep=sigmas * 1000.0, encoder_hidden_states=embeds, return_dict=False
    )[0]
    return functional.mse_loss(prediction.float(), (noise - latents).float())


def _scheduler_shift(pipe: Any, config: TrainConfig) -> float:
    if config.flow_shift is not None:
        return float(config.flow_shift)
    return float(getattr(pipe.scheduler.config, "shift", 1.0) or 1.0)


# --------------------------------------------------------------------------------------------------- training


def _lora_config(rank: int, alpha: float, target_modules: Sequence[str]) -> Any:
    import peft

    p: Any = peft  # LoraConfig types lora_alpha as int; a float works
    return p.LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=list(target_modules))


def read_adapter_info(adapter_dir: Path) -> dict[str, Any]:
    """The ``adapter.json`` of an adapter directory written by :func:`train_lora`."""
    path = Path(adapter_dir) / ADAPTER_INFO
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{adapter_dir} is not a LoRA adapter directory (no {ADAPTER_INFO})") from None
    return info


def _load_init_adapter(transformer: Any, adapter_dir: Path) -> None:
    """Put the weights of a saved adapter into the (same-shaped) "default" adapter of ``transformer``."""
    import diffusers
    from peft.utils import set_peft_model_state_dict

    d: Any = diffusers
    state = d.WanPipeline.lora_state_dict(str(adapter_dir))
    if isinstance(state, tuple):
        state = state[0]
    prefix = "transformer."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise ModelError(f"{adapter_dir} holds no transformer LoRA weights")
    result = set_peft_model_state_dict(
        transformer, d.utils.convert_unet_state_dict_to_peft(weights), adapter_name="default"
    )
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ModelError(f"{adapter_dir} does not fit this model's LoRA layers: {unexpected[:3]}")


class _Pairs(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item: dict[str, torch.Tensor] = self.items[index]
        return item


def _forever(loader: Any) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        yield from loader


def train_lora(
    model_dir: Path,
    samples: Sequence[Sample],
    out_dir: Path,
    config: TrainConfig,
    *,
    init_adapter: Path | None = None,
    on_step: TrainCallback | None = None,
    tracker: Tracker | None = None,
) -> TrainResult:
    """Train a LoRA adapter on the Wan transformer in ``model_dir`` with the flow-matching objective and save it to
    ``out_dir`` (must not exist or be empty; written atomically by the main process).

    ``init_adapter``: continue from a saved adapter (its rank, alpha and target modules win over ``config``).
    Runs under ``accelerate`` (mixed precision and gradient accumulation from ``config``), so ``accelerate launch``
    or ``torchrun`` spreads it over GPUs unchanged. Same seed, samples and config -> same adapter (on the CPU).
    """
    from accelerate import Accelerator  # type: ignore[import-untyped]
    from peft.utils import get_peft_model_state_dict

    config.check()
    require(len(samples) > 0, "samples", "at least one sample is needed")
    require_wan(model_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty")
    rank, alpha, targets = config.rank, config.lora_alpha, tuple(config.target_modules)
    if init_adapter is not None:
        info = read_adapter_info(init_adapter)
        rank, alpha, targets = int(info["rank"]), float(info["alpha"]), tuple(info["target_modules"])

    started = time.perf_counter()
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation,
        cpu=not torch.cuda.is_available(),
    )
    base_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.mixed_precision]
    pipe = _load_wan(model_dir, base_dtype)
    shift = _scheduler_shift(pipe, config)
    items = _encode(pipe, samples, config, accelerator.device)
    transformer = pipe.transformer
    del pipe  # the VAE and text encoder are no longer needed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the LoRA A matrices' initialisation
        transformer.add_adapter(_lora_config(rank, alpha, targets))
    if init_adapter is not None:
        _load_init_adapter(transformer, init_adapter)
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    if not trainable:
        raise ModelError(f"no module of the transformer matches target_modules {targets}")
    for param in trainable:
        param.data = param.data.float()  # LoRA weights train in float32 even over a bf16/fp16 base
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()

    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    loader = torch.utils.data.DataLoader(
        _Pairs(items),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=False,
        generator=torch.Generator().manual_seed(config.seed),
    )
    transformer, optimizer, loader = accelerator.prepare(transformer, optimizer, loader)
    noise_generator = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index + 1)

    params = {
        "base_model": Path(model_dir).name,
        "samples": len(samples),
        "processes": accelerator.num_processes,
        "init_adapter": str(init_adapter) if init_adapter else "none",
        **{k: v for k, v in asdict(config).items() if k not in ("rank", "alpha", "target_modules")},
        "rank": rank,
        "alpha": alpha,
        "target_modules": ",".join(targets),
        "flow_shift": shift,
    }
    if tracker is not None and accelerator.is_main_process:
        tracker.log_params(params)

    losses: list[float] = []
    micro_losses: list[torch.Tensor] = []
    batches = _forever(loader)
    while len(losses) < config.steps:
        batch = next(batches)
        latents, embeds = batch["latents"], batch["embeds"]
        count = latents.shape[0]
        sigmas = _sample_sigmas(count, config, shift, noise_generator).to(latents.device)
        noise = torch.randn(latents.shape, generator=noise_generator).to(latents.device)
        with accelerator.accumulate(transformer):
            with accelerator.autocast():
                loss = flow_matching_loss(transformer, latents, embeds, sigmas, noise)
            accelerator.backward(loss)
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        micro_losses.append(loss.detach())
        if not accelerator.sync_gradients:
            continue
        step_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean")
        micro_losses.clear()
        value = float(step_loss.item())
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss is {value} at step {len(losses) + 1}; lower the learning rate")
        losses.append(value)
        if tracker is not None and accelerator.is_main_process:
            tracker.log_metrics({"train_loss": value}, step=len(losses))
        if on_step is not None and accelerator.is_main_process:
            on_step(len(losses), config.steps, value)

    final_loss = float(np.mean(losses[-10:]))
    info = {
        "kind": "wan",
        "base_model": Path(model_dir).name,
        "rank": rank,
        "alpha": alpha,
        "target_modules": list(targets),
        "steps": len(losses),
        "samples": len(samples),
        "prompts": [s.prompt for s in samples],
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size * config.gradient_accumulation * accelerator.num_processes,
        "width": config.width,
        "height": config.height,
        "num_frames": config.num_frames,
        "seed": config.seed,
        "final_loss": final_loss,
        "init_adapter": str(init_adapter) if init_adapter else None,
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(transformer)
        state = {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        _save_adapter(out_dir, state, _lora_config(rank, alpha, targets).to_dict(), info)
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    seconds = time.perf_counter() - started
    if tracker is not None and accelerator.is_main_process:
        tracker.log_metrics({"final_loss": final_loss, "train_seconds": seconds}, step=len(losses))
    log.info("trained LoRA adapter %s: %d steps, final loss %.5f, %.1fs", out_dir, len(losses), final_loss, seconds)
    return TrainResult(out_dir, len(losses), losses, final_loss, seconds, info)


def _save_adapter(
    out_dir: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any], info: dict[str, Any]
) -> None:
    """Write the adapter (diffusers' LoRA format plus adapter.json) to a staging directory, then move it in place."""
    import diffusers

    d: Any = diffusers
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
        d.WanPipeline.save_lora_weights(
            staging,
            transformer_lora_layers=state,
            transformer_lora_adapter_metadata=metadata,
            weight_name=WEIGHTS_NAME,
        )
        (staging / ADAPTER_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            out_dir.rmdir()
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_adapter(
    model_dir: Path, adapter_dir: Path | None, samples: Sequence[Sample], config: TrainConfig
) -> float:
    """Mean flow-matching loss of the model (with the adapter in ``adapter_dir``, or the base model when None) on
    ``samples``, at ``config.eval_timesteps`` fixed timesteps per sample with noise seeded by ``config.seed``.
    Deterministic, so adapters compare on the same samples and config; lower is better."""
    config.check()
    require(len(samples) > 0, "samples", "at least one sample is needed")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipe = _load_wan(model_dir)
    if adapter_dir is not None:
        try:
            pipe.load_lora_weights(str(adapter_dir), adapter_name="evaluated")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load LoRA adapter {adapter_dir}: {exc}") from exc
    shift = _scheduler_shift(pipe, config)
    items = _encode(pipe, samples, config, device)
    transformer = pipe.transformer.to(device)
    transformer.eval()
    count = config.eval_timesteps
    sigmas = _shift((torch.arange(count, dtype=torch.float32) + 0.5) / count, shift).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    total = 0.0
    for item in items:
        latents = item["latents"][None].to(device).expand(count, *item["latents"].shape)
        embeds = item["embeds"][None].to(device).expand(count, *item["embeds"].shape)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        total += float(flow_matching_loss(transformer, latents, embeds, sigmas, noise).item())
    return total / len(items)


# --------------------------------------------------------------------------------------------------- hot-loading


def adapter_name(version: str) -> str:
    """A PEFT-safe adapter name for a version string (letters, digits and underscores)."""
    name = re.sub(r"\W", "_", version)
    return name if name and not name[0].isdigit() else f"v_{name}"


def loaded_adapters(pipe: Any) -> list[str]:
    """The names of the LoRA adapters loaded into ``pipe``'s transformer."""
    adapters = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
    return sorted({name for names in adapters.values() for name in names})


def load_adapter(pipe: Any, adapter_dir: Path, name: str) -> str:
    """Make ``pipe`` (an already loaded WanPipeline, e.g. ``Engine.pipe``) generate with the adapter in
    ``adapter_dir`` under ``name``; any adapter loaded before is deleted first, never stacked. Returns the
    adapter name used. The caller serialises this with generation (``Engine.use_adapter`` holds its lock)."""
    name = adapter_name(name)
    previous = loaded_adapters(pipe)
    if previous:
        pipe.delete_adapters(previous)
    try:
        pipe.load_lora_weights(str(adapter_dir), adapter_name=name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load LoRA adapter {adapter_dir}: {exc}") from exc
    pipe.set_adapters([name], adapter_weights=[1.0])
    return name


def unload_adapter(pipe: Any) -> None:
    """Back to the base model: remove every LoRA layer from ``pipe``."""
    if loaded_adapters(pipe):
        pipe.unload_lora_weights()


__all__ = [
    "ADAPTER_INFO",
    "WAN_TARGET_MODULES",
    "WEIGHTS_NAME",
    "MlflowTracker",
    "Sample",
    "Tracker",
    "TrainConfig",
    "TrainResult",
    "UnsupportedModel",
    "adapter_name",
    "evaluate_adapter",
    "flow_matching_loss",
    "load_adapter",
    "loaded_adapters",
    "mlflow_available",
    "read_adapter_info",
    "read_video",
    "require_wan",
    "train_lora",
    "unload_adapter",
    "video_tensor",
]
