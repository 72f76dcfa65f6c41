"""Alembic environment of the video_diffusion schema (run through ``store.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from creatormesh.video_diffusion.store import VERSION_TABLE, Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("sqlalchemy.url is not set")

engine = create_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
