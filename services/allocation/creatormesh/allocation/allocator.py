"""The allocation use cases, free of transport: recommend a share, split a pool
(idempotently, through the ledger), record incoming creator metrics and scored
content. The gRPC servicer and the Kafka handlers are thin adapters over this."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from creatormesh.allocation.fairness import Assessment, Context, FairnessEngine
from creatormesh.allocation.ledger import Ledger, StoredAllocation
from creatormesh.allocation.pool import Member, split
from creatormesh.allocation.signals import CreatorSignals, validate
from creatormesh.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, require

ENGINE = "engine"
DPO = "dpo"
REFERENCE_REFRESH_SECONDS = 30.0
ALLOCATION_NAMESPACE = uuid.UUID("5d0c5f0e-2f7a-4bb8-9d0b-6f1c3c8e7a11")


@dataclass(frozen=True)
class Recommendation:
    creator_id: str
    share: float
    assessment: Assessment
    policy: str
    policy_version: str = ""
    fallback: bool = False
    rationale: str = ""


@dataclass(frozen=True)
class PoolMemberInput:
    """A pool member as requested: signals may be omitted when ``creator.metrics`` reported them."""

    creator_id: str
    signals: Mapping[str, Any] | None
    floor_cents: int | None = None
    cap_cents: int | None = None


@dataclass(frozen=True)
class PoolRequest:
    request_id: str
    budget_cents: int
    members: Sequence[PoolMemberInput]
    pool_id: str = ""
    currency: str = "USD"
    policy: str = ENGINE
    period: tuple[float, float] | None = None


#: (members, population context) -> one non-negative split weight per member
Scorer = Callable[[list[tuple[str, CreatorSignals]], Context], Sequence[float]]


@dataclass
class Allocator:
    engine: FairnessEngine
    ledger: Ledger
    max_pool_members: int = 100_000
    policy_version: str = "engine-1"
    _reference: Context | None = field(default=None, repr=False)
    _reference_built: float = field(default=0.0, repr=False)
    _reference_stale: bool = field(default=False, repr=False)

    # --- recommendations ----------------------------------------------------
    def reference_context(self) -> Context:
        """Population context for single recommendations: every creator the ledger knows, else neutral.

        Rebuilt from the ledger after new creator metrics, at most once every
        REFERENCE_REFRESH_SECONDS, so a stream of events does not reload it per call."""
        now = time.monotonic()
        due = self._reference_stale and now - self._reference_built >= REFERENCE_REFRESH_SECONDS
        if self._reference is None or due:
            known = [validate(s) for s in self.ledger.all_signals()]
            self._reference = Context.from_population(known) if len(known) >= 20 else Context.neutral()
            self._reference_built, self._reference_stale = now, False
        return self._reference

    def recommend(self, creator_id: str, signals: CreatorSignals) -> Recommendation:
        require(bool(creator_id.strip()), "creator_id", "is required")
        assessment = self.engine.assess(creator_id, signals, self.reference_context())
        share = self.engine.recommended_share(assessment)
        return Recommendation(
            creator_id, share, assessment, ENGINE, self.policy_version, rationale=assessment.rationale
        )

    # --- pools ---------------------------------------------------------------
    def resolve_members(self, members: Sequence[PoolMemberInput]) -> list[tuple[str, CreatorSignals]]:
        """Validate members, filling omitted signals from the latest ``creator.metrics``."""
        missing = [m.creator_id for m in members if m.signals is None]
        stored = self.ledger.latest_signals(missing) if missing else {}
        out = []
        for i, m in enumerate(members):
            require(bool(m.creator_id.strip()), f"members[{i}].creator_id", "is required")
            raw = m.signals if m.signals is not None else stored.get(m.creator_id)
            if raw is None:
                raise InvalidArgument(
                    f"members[{i}].signals", f"missing, and no creator.metrics known for {m.creator_id!r}"
                )
            out.append((m.creator_id, validate(raw, prefix=f"members[{i}].signals.")))
        return out

    def allocate(
        self, request: PoolRequest, scorer: Scorer | None = None, policy_version: str = ""
    ) -> tuple[StoredAllocation, bool]:
        """Split the pool, store it under its request id; returns (allocation, replayed).

        ``scorer`` replaces the engine's scores as split weights (the DPO policy's
        repaired shares); the split itself always conserves the budget exactly."""
        require(bool(request.request_id.strip()), "request_id", "is required (the idempotency key)")
        require(len(request.request_id) <= 128, "request_id", "must be at most 128 characters")
        require(request.budget_cents >= 0, "budget_cents", "must be >= 0")
        require(len(request.currency) == 3 and request.currency.isalpha(), "currency", "must be an ISO 4217 code")
        require(0 < len(request.members) <= self.max_pool_members, "members", f"must have 1..{self.max_pool_members}")
        if request.policy == DPO and scorer is None:
            raise FailedPrecondition("the DPO policy is not configured for pools on this server")
        digest = request_hash(request)
        existing = self.ledger.find_by_request(request.request_id)
        if existing is not None:
            return self._replay(existing, digest)
        resolved = self.resolve_members(request.members)
        signals = [s for _, s in resolved]
        context = Context.from_population(signals)
        scores = scorer(resolved, context) if scorer is not None else self.engine.scores(signals, context)
        members = [
            Member(cid, float(score), m.floor_cents, m.cap_cents)
            for (cid, _), score, m in zip(resolved, scores, request.members, strict=True)
        ]
        parts = split(request.budget_cents, members)
        allocation = StoredAllocation(
            allocation_id=str(uuid.uuid5(ALLOCATION_NAMESPACE, request.request_id)),
            request_id=request.request_id,
            request_hash=digest,
            pool_id=request.pool_id,
            budget_cents=request.budget_cents,
            currency=request.currency.upper(),
            policy=DPO if scorer is not None else ENGINE,
            policy_version=policy_version or self.policy_version,
            period_start=request.period[0] if request.period else None,
            period_end=request.period[1] if request.period else None,
            created_at=time.time(),
            parts=tuple(parts),
            published=False,
        )
        stored, inserted = self.ledger.store(allocation)
        return (stored, False) if inserted else self._replay(stored, digest)

    @staticmethod
    def _replay(existing: StoredAllocation, digest: str) -> tuple[StoredAllocation, bool]:
        if existing.request_hash != digest:
            raise AlreadyExists(
                f"request_id {existing.request_id!r} was already used for a different pool (allocation "
                f"{existing.allocation_id}); use a new request_id"
            )
        return existing, True

    def get(self, allocation_id: str) -> StoredAllocation:
        require(bool(allocation_id.strip()), "allocation_id", "is required")
        found = self.ledger.get(allocation_id)
        if found is None:
            raise NotFound("allocation", allocation_id)
        return found

    # --- events --------------------------------------------------------------
    def record_metrics(self, event_id: str, creator_id: str, raw: Mapping[str, Any]) -> bool:
        require(bool(creator_id.strip()), "creator_id", "is required")
        applied = self.ledger.record_signals(event_id, creator_id, validate(raw, prefix="signals."))
        if applied:
            self._reference_stale = True
        return applied

    def record_content(self, event_id: str, creator_id: str, viral_score: float, quality: float) -> bool:
        if not creator_id:
            return False  # content without a creator has nothing to allocate to
        require(0.0 <= viral_score <= 1.0, "v", "must be in [0, 1]")
        require(0.0 <= quality <= 1.0, "quality_score", "must be in [0, 1]")
        return self.ledger.record_content(event_id, creator_id, viral_score, quality)


def request_hash(request: PoolRequest) -> str:
    """A stable digest of everything that determines the split (not the request id)."""
    body = {
        "budget_cents": request.budget_cents,
        "currency": request.currency.upper(),
        "pool_id": request.pool_id,
        "policy": request.policy,
        "period": list(request.period) if request.period else None,
        "members": [
            [
                m.creator_id,
                dict(sorted(m.signals.items())) if m.signals is not None else None,
                m.floor_cents,
                m.cap_cents,
            ]
            for m in request.members
        ],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
