"""SQLAlchemy plumbing shared by the services that keep state in a database (PostgreSQL in production, SQLite by
default): one engine per URL, a transaction per unit of work. Needs the `db` extra."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """An engine for ``url`` (a SQLite file's directory is created) and transactional sessions. Repositories
    subclass it; they are synchronous, and async services call them from a worker thread.

    ``serialise_sqlite`` makes every SQLite transaction ``BEGIN IMMEDIATE``: one writer at a time from its first
    statement, so a read-then-write (count, then insert) cannot interleave with another's. SQLite ignores
    ``SELECT ... FOR UPDATE``, which is what PostgreSQL relies on for the same guarantee."""

    def __init__(self, url: str, *, serialise_sqlite: bool = False) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if serialise_sqlite and self.engine.dialect.name == "sqlite":
            _begin_immediate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session


def _begin_immediate(engine: Engine) -> None:
    """SQLAlchemy's recipe: take transaction control from pysqlite and open each one with BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
