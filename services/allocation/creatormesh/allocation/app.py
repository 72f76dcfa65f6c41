"""The allocation service on the kit: loads the engine, ledger and evaluators,
serves AllocationService, consumes ``creator.metrics`` and ``content.scored``,
publishes ``allocations.decided`` (with an outbox, so a broker outage delays
events but loses none)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence

from creatormesh.allocation import evaluation
from creatormesh.allocation.allocator import DPO, Allocator, PoolRequest, Recommendation, Scorer
from creatormesh.allocation.fairness import Context, FairnessEngine, Weights
from creatormesh.allocation.ledger import Ledger, StoredAllocation
from creatormesh.allocation.policy.serve import EndpointPolicy, LocalPolicy, Policy, repair
from creatormesh.allocation.policy.train import policy_version
from creatormesh.allocation.servicer import AllocationServicer, allocation_pb, present
from creatormesh.allocation.settings import AllocationSettings
from creatormesh.allocation.signals import CreatorSignals
from creatormesh.allocation.v1 import allocation_pb2, allocation_pb2_grpc
from creatormesh.common import topics
from creatormesh.common.bus import Event, Handler
from creatormesh.common.errors import FailedPrecondition, InvalidArgument
from creatormesh.common.server import Runtime, Service, Servicer
from creatormesh.common.settings import load
from creatormesh.events.v1 import allocations_pb2

log = logging.getLogger("creatormesh.allocation")
FULL_NAME = allocation_pb2.DESCRIPTOR.services_by_name["AllocationService"].full_name
OUTBOX_INTERVAL_SECONDS = 5.0
#: the policy is asked once per member: keep DPO pools small
DPO_MAX_POOL_MEMBERS = 256


class AllocationService(Service):
    name = "allocation"

    def __init__(self, runtime: Runtime, settings: AllocationSettings | None = None) -> None:
        super().__init__(runtime)
        self.settings = settings or load(AllocationSettings)
        self.limits = evaluation.Limits(max_keyframes=64)  # the contract allows 0..64
        self.allocator: Allocator
        self.local_evaluator: evaluation.LocalEvaluator
        self.vision_evaluator: evaluation.VisionLLMEvaluator | None = None
        self._outbox: asyncio.Task[None] | None = None
        self.policy: Policy | None = None
        self.policy_version = ""
        self._publish_lock = asyncio.Lock()

    def servicers(self) -> Sequence[Servicer]:
        return [
            Servicer(allocation_pb2_grpc.add_AllocationServiceServicer_to_server, AllocationServicer(self), FULL_NAME)
        ]

    async def load(self) -> None:
        s = self.settings
        weights = Weights.parse(s.weights) if s.weights else Weights.default()
        engine = FairnessEngine(weights, s.min_share, s.max_share)
        ledger = Ledger(s.database_url)
        await asyncio.to_thread(ledger.create_schema)
        self.allocator = Allocator(engine, ledger, s.max_pool_members, policy_version=engine.version)
        embedder = await asyncio.to_thread(evaluation.TextEmbedder, s.embedder_path or None, threads=s.torch_threads)
        await asyncio.to_thread(embedder.embed, ["warm-up"])  # SERVING means the model answers
        self.local_evaluator = evaluation.LocalEvaluator(embedder, self.limits)
        if s.evaluator_endpoint_url:
            self.vision_evaluator = evaluation.VisionLLMEvaluator(
                s.evaluator_endpoint_url, s.evaluator_model, self.local_evaluator,
                api_key=s.evaluator_api_key, timeout_seconds=s.evaluator_timeout_seconds,
            )  # fmt: skip
        await self._load_policy(weights)
        if self.runtime.bus is not None:
            self._outbox = asyncio.create_task(self._drain_outbox_forever(), name="allocation-outbox")
        log.info("allocation loaded: weights %s, ledger %s", dict(weights.values), ledger.engine.url.render_as_string())

    async def close(self) -> None:
        if self._outbox is not None:
            self._outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox
        if self.vision_evaluator is not None:
            await self.vision_evaluator.aclose()
        if isinstance(self.policy, EndpointPolicy):
            await self.policy.aclose()
        if hasattr(self, "allocator"):
            self.allocator.ledger.close()

    # --- use cases called by the servicer ------------------------------------
    async def recommend_with_policy(self, creator_id: str, signals: CreatorSignals) -> Recommendation:
        """The DPO policy proposes, the engine validates and repairs (bounds, tolerance, fallback)."""
        if self.policy is None:
            raise FailedPrecondition(
                "the DPO policy is not configured on this server (CREATORMESH_ALLOCATION_POLICY_MODEL_PATH "
                "or CREATORMESH_ALLOCATION_POLICY_ENDPOINT_URL)"
            )
        context = await asyncio.to_thread(self.allocator.reference_context)
        proposal = await self.policy.propose(creator_id, signals)
        decision = repair(proposal, self.allocator.engine, creator_id, signals, context, self.settings.policy_tolerance)
        assessment = decision.assessment or self.allocator.engine.assess(creator_id, signals, context)
        return Recommendation(
            creator_id,
            decision.share,
            assessment,
            DPO,
            self.policy_version,
            fallback=decision.fallback,
            rationale=decision.rationale,
        )

    def _policy_scorer(self, size: int) -> Scorer:
        """Split weights from the DPO policy's shares, each repaired by the engine. Runs in the
        ledger's worker thread and waits there for the proposals made on the event loop."""
        policy = self.policy
        if policy is None:
            raise FailedPrecondition("the DPO policy is not configured on this server")
        if size > DPO_MAX_POOL_MEMBERS:
            raise InvalidArgument("members", f"pools with the DPO policy take at most {DPO_MAX_POOL_MEMBERS} members")
        loop = asyncio.get_running_loop()
        engine, tolerance = self.allocator.engine, self.settings.policy_tolerance

        async def shares(members: list[tuple[str, CreatorSignals]], context: Context) -> list[float]:
            out = []
            for creator_id, signals in members:
                proposal = await policy.propose(creator_id, signals)
                out.append(repair(proposal, engine, creator_id, signals, context, tolerance).share)
            return out

        def scorer(members: list[tuple[str, CreatorSignals]], context: Context) -> list[float]:
            return asyncio.run_coroutine_threadsafe(shares(members, context), loop).result()

        return scorer

    async def _load_policy(self, weights: Weights) -> None:
        s = self.settings
        if s.policy_endpoint_url:
            self.policy = EndpointPolicy(
                s.policy_endpoint_url,
                s.policy_endpoint_model,
                s.policy_timeout_seconds,
                weights=weights,
                min_share=s.min_share,
                max_share=s.max_share,
            )
            self.policy_version = f"endpoint:{s.policy_endpoint_model}"
        elif s.policy_model_path:
            self.policy = await asyncio.to_thread(
                LocalPolicy,
                s.policy_model_path,
                s.policy_adapter_path or None,
                weights,
                s.min_share,
                s.max_share,
                timeout=s.policy_timeout_seconds,
            )
            self.policy_version = policy_version(s.policy_adapter_path) if s.policy_adapter_path else "base"

    async def allocate(self, request: PoolRequest) -> tuple[StoredAllocation, bool]:
        scorer = None
        if request.policy == DPO:
            scorer = self._policy_scorer(len(request.members))
        stored, replayed = await asyncio.to_thread(
            self.allocator.allocate, request, scorer, self.policy_version if scorer else ""
        )
        if not stored.published:
            await self._publish(stored)
        return stored, replayed

    async def evaluate(self, stream: evaluation.StreamInput, which: str) -> evaluation.Evaluation:
        if which == "vision_llm" or (not which and self.vision_evaluator is not None):
            if self.vision_evaluator is not None:
                return await self.vision_evaluator.evaluate(stream)
            result = await self.local_evaluator.evaluate(stream)
            return dataclasses.replace(result, fallback=True, fallback_reason="no vision endpoint is configured")
        return await self.local_evaluator.evaluate(stream)

    # --- events ----------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {topics.CREATOR_METRICS: self.on_creator_metrics, topics.CONTENT_SCORED: self.on_content_scored}

    async def on_creator_metrics(self, event: Event) -> None:
        payload = event.payload
        if not payload.HasField("signals"):
            raise InvalidArgument("signals", "is required")
        await asyncio.to_thread(
            self.allocator.record_metrics, event.event_id, payload.creator_id, present(payload.signals)
        )

    async def on_content_scored(self, event: Event) -> None:
        p = event.payload
        await asyncio.to_thread(self.allocator.record_content, event.event_id, p.creator_id, p.v, p.quality_score)

    async def _publish(self, stored: StoredAllocation) -> None:
        bus = self.runtime.bus
        if bus is None:
            return
        msg = allocation_pb(stored)
        event = allocations_pb2.AllocationDecided(
            allocation_id=msg.allocation_id, request_id=msg.request_id, pool_id=msg.pool_id,
            budget_cents=msg.budget_cents, currency=msg.currency, parts=msg.parts, policy=msg.policy,
            policy_version=msg.policy_version,
        )  # fmt: skip
        if msg.HasField("period"):
            event.period.CopyFrom(msg.period)
        event.decided_at.CopyFrom(msg.created_at)
        async with self._publish_lock:
            try:
                # the allocation id is the event id: a re-publish after a crash is a duplicate consumers skip
                await bus.publish(topics.ALLOCATIONS_DECIDED, event, subject=stored.allocation_id,
                                  event_id=stored.allocation_id)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 — the outbox retries
                log.warning("allocations.decided for %s not published yet: %s", stored.allocation_id, exc)
                return
            await asyncio.to_thread(self.allocator.ledger.mark_published, stored.allocation_id)

    async def _drain_outbox_forever(self) -> None:
        while True:
            await asyncio.sleep(OUTBOX_INTERVAL_SECONDS)
            try:
                for stored in await asyncio.to_thread(self.allocator.ledger.unpublished):
                    await self._publish(stored)
            except Exception as exc:  # noqa: BLE001 — keep the outbox alive
                log.warning("outbox pass failed: %s", exc)
