"""Prometheus metrics of the video_diffusion service (exported on the kit's metrics port): generation latency,
queue depth, errors, output quality and prompt drift, for dashboards and the canary analysis."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter("video_diffusion_jobs_total", "Generation jobs by outcome (submitted, succeeded, failed).", ["outcome"])
JOB_SECONDS = Histogram(
    "video_diffusion_job_seconds",
    "Wall time of one job on a worker (all its candidates).",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
CANDIDATE_SECONDS = Histogram(
    "video_diffusion_generation_seconds",
    "Seconds to generate, encode and store one candidate video.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
QUEUE_DEPTH = Gauge("video_diffusion_queue_depth", "Job queue entries by state (waiting, pending, dead).", ["state"])
ERRORS = Counter("video_diffusion_errors_total", "Failures by where they happened (candidate, worker).", ["where"])
QUALITY = Histogram(
    "video_diffusion_quality",
    "Quality of generated videos by measure (clip_score, temporal_consistency, flicker).",
    ["measure"],
    buckets=(-0.5, -0.25, 0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
DRIFT = Gauge("video_diffusion_prompt_drift", "Drift of recent prompts from the reference window (0 = none).")
PICKS = Counter("video_diffusion_picks_total", "Candidate picks recorded.")
RETRAINS = Counter("video_diffusion_retrain_requests_total", "retrain.requested events triggered by picks.")
TRAINING_RUNS = Counter(
    "video_diffusion_training_runs_total",
    "Training runs started by retrain.requested, by outcome (registered, rejected, refused, failed).",
    ["outcome"],
)
