"""The stream_clipper service's own settings (CREATORMESH_STREAM_CLIPPER_*)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import SettingsBase


class StreamClipperSettings(SettingsBase):
    """Storage, speech-to-text, rendering, publishing to TikTok and monitoring Kick."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_STREAM_CLIPPER_", extra="ignore", frozen=True)
    title: ClassVar[str] = "stream_clipper"

    database_url: str = Field(
        "sqlite:///.creatormesh/stream_clipper/clipper.db",
        description="Jobs, clips and channels (SQLAlchemy URL): PostgreSQL in production, SQLite by default.",
    )
    work_dir: str = Field(".creatormesh/stream_clipper/work", description="Scratch space: downloads, recordings, cuts.")
    storage: str = Field(
        ".creatormesh/stream_clipper/media",
        description="Where clips are kept: a directory, or s3://bucket/prefix for S3-compatible storage.",
    )
    s3_endpoint_url: str = Field("", description="S3 endpoint for non-AWS object stores (empty: AWS).")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key: str = Field("", description="S3 access key (empty: boto3's usual sources, e.g. AWS_ACCESS_KEY_ID).")
    s3_secret_key: str = Field("", description="S3 secret key (empty: boto3's usual sources).")
    stt_engine: Literal["pocketsphinx", "faster-whisper"] = Field(
        "pocketsphinx", description="Speech-to-text: pocketsphinx (offline English, shipped) or faster-whisper."
    )
    whisper_model_dir: str = Field("", description="faster-whisper: local CTranslate2 model directory.")
    whisper_device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="faster-whisper device.")
    whisper_compute_type: str = Field("int8", description="faster-whisper compute type (int8, float16, ...).")
    keywords_path: str = Field("", description="Keyword patterns YAML (empty: the shipped rules/keywords.yaml).")
    scene_threshold: float = Field(10.0, gt=0, le=100, description="ffmpeg scdet score that counts as a cut.")
    max_concurrent_jobs: int = Field(1, ge=1, le=32, description="VOD jobs processed at once by this replica.")
    job_lease_seconds: float = Field(
        120.0, gt=5, description="A running job's lease; a job whose worker died is resumed after it expires."
    )
    ffmpeg_timeout_seconds: float = Field(900.0, gt=0, description="Longest one ffmpeg run (cut/render) may take.")
    fonts_dir: str = Field("", description="Subtitle fonts directory (empty: DejaVu shipped with matplotlib).")
    logo_path: str = Field("", description="PNG logo burned top-right into rendered clips (empty: none).")
    auto_publish: bool = Field(False, description="Publish rendered clips whose viral score clears the threshold.")
    publish_threshold: float = Field(0.6, ge=0, le=1, description="Viral score V a clip needs to be auto-published.")
    description_template: str = Field(
        "{transcript} #{streamer} #clips", description="TikTok caption; {streamer}, {transcript}, {keywords}."
    )
    tiktok_api_url: str = Field("https://open.tiktokapis.com", description="TikTok API base URL.")
    tiktok_client_key: str = Field("", description="TikTok app client key (empty: publishing is off).")
    tiktok_client_secret: str = Field("", description="TikTok app client secret.")
    tiktok_refresh_token: str = Field(
        "", description="Seed refresh token from the OAuth flow; used when Redis holds no TikTok token yet."
    )
    tiktok_strategy: Literal["MULTIPART", "FILE_UPLOAD", "PULL_FROM_URL"] = Field(
        "MULTIPART", description="Default upload strategy."
    )
    tiktok_poll_seconds: float = Field(5.0, gt=0, description="Interval between TikTok publish-status checks.")
    tiktok_privacy_level: str = Field("PUBLIC_TO_EVERYONE", description="Privacy of posts (SELF_ONLY in sandbox).")
    kick_client_id: str = Field("", description="Kick app client id (empty: monitoring is off).")
    kick_client_secret: str = Field("", description="Kick app client secret.")
    kick_auth_url: str = Field("https://id.kick.com/oauth/token", description="Kick OAuth2 token endpoint.")
    kick_api_url: str = Field("https://api.kick.com", description="Kick public API base URL.")
    kick_playback_api: str = Field(
        "https://kick.com/api/v2/channels/{slug}/livestream", description="Where a live channel's HLS URL is read."
    )
    record_stall_seconds: float = Field(
        60.0, gt=0, description="A live recording with no progress this long is restarted (while the channel is live)."
    )
    kick_poll_seconds: float = Field(30.0, gt=0, description="Interval between status checks of monitored channels.")
    redis_prefix: str = Field("stream_clipper", min_length=1, description="Prefix of the service's Redis keys.")
