"""The allocation ledger (SQLAlchemy: PostgreSQL in production, SQLite by default).

Every pool allocation is stored once under its request id; a retried call or a
redelivered event never pays twice. Events applied to the database record their
event id in the same transaction as their effect (exactly-once effects).
Allocations are also an outbox: ``published`` turns true once
``allocations.decided`` was acknowledged by the broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from creatormesh.allocation.pool import Part
from creatormesh.allocation.signals import CreatorSignals
from creatormesh.common.database import Database


class Base(DeclarativeBase):
    pass


class AllocationRow(Base):
    __tablename__ = "allocations"

    allocation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    pool_id: Mapped[str] = mapped_column(String(128), default="")
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    policy: Mapped[str] = mapped_column(String(16))
    policy_version: Mapped[str] = mapped_column(String(64), default="")
    period_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    period_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    parts: Mapped[list[PartRow]] = relationship(
        back_populates="allocation", order_by="PartRow.position", cascade="all, delete-orphan"
    )


class PartRow(Base):
    __tablename__ = "allocation_parts"

    allocation_id: Mapped[str] = mapped_column(ForeignKey("allocations.allocation_id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    creator_id: Mapped[str] = mapped_column(String(128), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    share: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    floor_applied: Mapped[bool] = mapped_column(Boolean)
    cap_applied: Mapped[bool] = mapped_column(Boolean)
    allocation: Mapped[AllocationRow] = relationship(back_populates="parts")


class CreatorSignalsRow(Base):
    """The latest signals reported for a creator (from ``creator.metrics``)."""

    __tablename__ = "creator_signals"

    creator_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON)
    reported_at: Mapped[float] = mapped_column(Float)


class CreatorContentRow(Base):
    """Running statistics of a creator's scored content (from ``content.scored``)."""

    __tablename__ = "creator_content"

    creator_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    items: Mapped[int] = mapped_column(Integer, default=0)
    mean_viral_score: Mapped[float] = mapped_column(Float, default=0.0)
    mean_quality: Mapped[float] = mapped_column(Float, default=0.0)


class AppliedEvent(Base):
    """Event ids whose effect is in this database (written in the effect's transaction)."""

    __tablename__ = "applied_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class StoredAllocation:
    allocation_id: str
    request_id: str
    request_hash: str
    pool_id: str
    budget_cents: int
    currency: str
    policy: str
    policy_version: str
    period_start: float | None
    period_end: float | None
    created_at: float
    parts: tuple[Part, ...]
    published: bool


def _stored(row: AllocationRow) -> StoredAllocation:
    parts = tuple(
        Part(p.creator_id, p.amount_cents, p.share, p.score, p.floor_applied, p.cap_applied) for p in row.parts
    )
    return StoredAllocation(
        row.allocation_id,
        row.request_id,
        row.request_hash,
        row.pool_id,
        row.budget_cents,
        row.currency,
        row.policy,
        row.policy_version,
        row.period_start,
        row.period_end,
        row.created_at,
        parts,
        row.published,
    )


class Ledger(Database):
    """Synchronous repository; the service calls it from a worker thread."""

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    # --- allocations -------------------------------------------------------
    def find_by_request(self, request_id: str) -> StoredAllocation | None:
        with self.session() as s:
            row = s.scalars(select(AllocationRow).where(AllocationRow.request_id == request_id)).first()
            return _stored(row) if row is not None else None

    def get(self, allocation_id: str) -> StoredAllocation | None:
        with self.session() as s:
            row = s.get(AllocationRow, allocation_id)
            return _stored(row) if row is not None else None

    def store(self, allocation: StoredAllocation) -> tuple[StoredAllocation, bool]:
        """Insert ``allocation``; if its request id is already stored, return that one and False."""
        try:
            with self.session() as s:
                row = AllocationRow(
                    allocation_id=allocation.allocation_id,
                    request_id=allocation.request_id,
                    request_hash=allocation.request_hash,
                    pool_id=allocation.pool_id,
                    budget_cents=allocation.budget_cents,
                    currency=allocation.currency,
                    policy=allocation.policy,
                    policy_version=allocation.policy_version,
                    period_start=allocation.period_start,
                    period_end=allocation.period_end,
                    created_at=allocation.created_at,
                    published=False,
                )
                s.add(row)
                s.flush()  # the allocation row first: the parts reference it
                s.execute(  # one executemany for the parts, not one ORM object each
                    insert(PartRow),
                    [
                        {
                            "allocation_id": allocation.allocation_id,
                            "position": i,
                            "creator_id": p.creator_id,
                            "amount_cents": p.amount_cents,
                            "share": p.share,
                            "score": p.score,
                            "floor_applied": p.floor_applied,
                            "cap_applied": p.cap_applied,
                        }
                        for i, p in enumerate(allocation.parts)
                    ],
                )
            return allocation, True
        except IntegrityError:
            existing = self.find_by_request(allocation.request_id)
            if existing is None:
                raise
            return existing, False

    def unpublished(self, limit: int = 100) -> list[StoredAllocation]:
        with self.session() as s:
            rows = s.scalars(
                select(AllocationRow)
                .where(AllocationRow.published.is_(False))
                .order_by(AllocationRow.created_at)
                .limit(limit)
            ).all()
            return [_stored(r) for r in rows]

    def mark_published(self, allocation_id: str) -> None:
        with self.session() as s:
            row = s.get(AllocationRow, allocation_id)
            if row is not None:
                row.published = True

    def payout_totals(self, creator_id: str) -> int:
        """Everything the ledger has allocated to a creator, in cents."""
        with self.session() as s:
            amounts = s.scalars(select(PartRow.amount_cents).where(PartRow.creator_id == creator_id)).all()
            return int(sum(amounts))

    # --- events ------------------------------------------------------------
    def _claim(self, s: Session, event_id: str, topic: str) -> bool:
        """Record ``event_id`` in this transaction; False if it was applied before."""
        if s.get(AppliedEvent, event_id) is not None:
            return False
        s.add(AppliedEvent(event_id=event_id, topic=topic, applied_at=time.time()))
        return True

    def record_signals(self, event_id: str, creator_id: str, signals: CreatorSignals) -> bool:
        """Upsert a creator's latest signals; False when the event was already applied."""
        try:
            with self.session() as s:
                if not self._claim(s, event_id, "creator.metrics"):
                    return False
                row = s.get(CreatorSignalsRow, creator_id)
                data = json.loads(json.dumps(signals.as_dict()))
                if row is None:
                    s.add(CreatorSignalsRow(creator_id=creator_id, signals=data, reported_at=time.time()))
                else:
                    row.signals = data
                    row.reported_at = time.time()
            return True
        except IntegrityError:  # a concurrent copy of the same event won the race
            return False

    def record_content(self, event_id: str, creator_id: str, viral_score: float, quality: float) -> bool:
        """Fold one scored item into the creator's running means; False when already applied."""
        try:
            with self.session() as s:
                if not self._claim(s, event_id, "content.scored"):
                    return False
                row = s.get(CreatorContentRow, creator_id)
                if row is None:
                    row = CreatorContentRow(creator_id=creator_id, items=0, mean_viral_score=0.0, mean_quality=0.0)
                    s.add(row)
                n = row.items + 1
                row.mean_viral_score += (viral_score - row.mean_viral_score) / n
                row.mean_quality += (quality - row.mean_quality) / n
                row.items = n
            return True
        except IntegrityError:
            return False

    def latest_signals(self, creator_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(CreatorSignalsRow).where(CreatorSignalsRow.creator_id.in_(list(creator_ids))))
            return {r.creator_id: dict(r.signals) for r in rows}

    def all_signals(self, limit: int = 100_000) -> list[dict[str, Any]]:
        with self.session() as s:
            return [dict(r.signals) for r in s.scalars(select(CreatorSignalsRow).limit(limit))]

    def content_stats(self, creator_id: str) -> tuple[int, float, float] | None:
        with self.session() as s:
            row = s.get(CreatorContentRow, creator_id)
            return (row.items, row.mean_viral_score, row.mean_quality) if row is not None else None
