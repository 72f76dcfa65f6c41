"""The video_diffusion service's own settings (CREATORMESH_VIDEO_DIFFUSION_*)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import SettingsBase


class VideoDiffusionSettings(SettingsBase):
    """Model, GPU memory options, queue, storage, prompt variations, retraining and monitoring."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_VIDEO_DIFFUSION_", extra="ignore", frozen=True)
    title: ClassVar[str] = "video_diffusion"

    model_dir: str = Field(
        ".creatormesh/video_diffusion/models/tiny-wan",
        description="Local diffusers model directory (WanPipeline or CogVideoXPipeline, safetensors).",
    )
    model_name: str = Field("", description="Model name reported with jobs (empty: the model directory's name).")
    build_tiny_model: bool = Field(
        False, description="Build a tiny random Wan pipeline at model_dir when it is missing (single-machine demo)."
    )
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1, ...")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype (bf16 on GPUs).")
    cpu_offload: bool = Field(False, description="Model CPU offload (accelerator devices only): less VRAM, slower.")
    vae_tiling: bool = Field(False, description="Decode the VAE in tiles (less VRAM for large frames).")
    vae_slicing: bool = Field(False, description="Decode the VAE one video at a time.")
    warm_up: bool = Field(True, description="Run one short generation before reporting SERVING.")
    default_negative_prompt: str = Field("", description="Negative prompt used when a request sends none.")
    database_url: str = Field(
        "sqlite:///.creatormesh/video_diffusion/jobs.db",
        description="Jobs, candidates, picks, adapters (SQLAlchemy URL): PostgreSQL in production, SQLite by default.",
    )
    storage: str = Field(
        ".creatormesh/video_diffusion/media",
        description="Where videos and adapters are kept: a directory, or s3://bucket/prefix.",
    )
    s3_endpoint_url: str = Field("", description="S3 endpoint for non-AWS object stores (empty: AWS).")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key: str = Field("", description="S3 access key (empty: boto3's usual sources).")
    s3_secret_key: str = Field("", description="S3 secret key (empty: boto3's usual sources).")
    work_dir: str = Field(".creatormesh/video_diffusion/work", description="Scratch space for encoding and training.")
    queue_key: str = Field("creatormesh:video_diffusion:jobs", description="Redis stream of the job queue.")
    workers: int = Field(1, ge=0, le=16, description="Jobs this replica generates at once (0: API only, no worker).")
    job_lease_seconds: float = Field(
        60.0, gt=1, description="A running job's lease; a job whose worker died is taken over after it expires."
    )
    max_deliveries: int = Field(
        3, ge=1, description="Deliveries of a queue entry before it is dead-lettered; starts of a job before it fails."
    )
    llm_base_url: str = Field(
        "", description="OpenAI-compatible endpoint for prompt rewrites, e.g. http://vllm:8000/v1 (empty: rules)."
    )
    llm_model: str = Field("", description="Model name sent to the LLM endpoint.")
    llm_api_key: str = Field("", description="Bearer token for the LLM endpoint.")
    llm_timeout_seconds: float = Field(10.0, gt=0, description="Whole-call timeout of a prompt rewrite request.")
    retrain_every_picks: int = Field(200, ge=1, description="Publish retrain.requested after this many picks.")
    clip_model_dir: str = Field(
        "", description="Local CLIP model directory for the CLIP score (empty: no CLIP score; flicker still measured)."
    )
    drift_reference_size: int = Field(200, ge=10, description="Prompts in the drift reference window.")
    drift_window_size: int = Field(200, ge=10, description="Recent prompts compared against the reference.")
    adapters_dir: str = Field(
        ".creatormesh/video_diffusion/adapters", description="Where trained LoRA adapters are kept locally."
    )
    trainer: bool = Field(
        False,
        description="Consume retrain.requested (video_diffusion.lora) and run `creatormesh video train-lora` in a "
        "child process: a trainer replica.",
    )
    trainer_args: str = Field(
        "", description="Arguments of the training command, e.g. '--steps 500 --mixed-precision bf16'."
    )
    trainer_activate: bool = Field(False, description="Make an adapter the trainer registered active for new jobs.")
    trainer_queue_key: str = Field(
        "creatormesh:video_diffusion:training", description="Redis stream of the training requests."
    )
