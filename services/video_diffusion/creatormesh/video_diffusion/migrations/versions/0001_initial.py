"""Jobs, candidates, picks, adapters, state and the event outbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vd_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.String(256), nullable=False, index=True),
        sa.Column("status", sa.Integer(), nullable=False, index=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("num_candidates", sa.Integer(), nullable=False),
        sa.Column("vary_prompt", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("adapter_version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("generation_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("selected_candidate_id", sa.String(96), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )
    op.create_table(
        "vd_candidates",
        sa.Column("candidate_id", sa.String(96), primary_key=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("vd_jobs.job_id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("video_url", sa.Text(), nullable=False),
        sa.Column("thumbnail_url", sa.Text(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("generation_seconds", sa.Float(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.UniqueConstraint("job_id", "idx"),
    )
    op.create_index("ix_vd_candidates_job_id", "vd_candidates", ["job_id"])
    op.create_table(
        "vd_picks",
        sa.Column("pick_number", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("vd_jobs.job_id", ondelete="CASCADE"), nullable=False),
        sa.Column("candidate_id", sa.String(96), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("video_url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("job_id", "user_id"),
    )
    op.create_table(
        "vd_adapters",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("parent_version", sa.String(64), nullable=False),
        sa.Column("training_samples", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False, index=True),
    )
    state = op.create_table(
        "vd_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.bulk_insert(
        state, [{"name": "picks_at_last_retrain", "value": "0"}, {"name": "active_adapter", "value": "base"}]
    )
    op.create_table(
        "vd_outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("message_type", sa.String(256), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True, index=True),
    )


def downgrade() -> None:
    for table in ("vd_outbox", "vd_state", "vd_adapters", "vd_picks", "vd_candidates", "vd_jobs"):
        op.drop_table(table)
