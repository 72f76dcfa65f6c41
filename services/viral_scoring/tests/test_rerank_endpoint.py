"""Rerank from a prompt: the service asks a real OpenAI-compatible server (vLLM's CPU build running a tiny local
LM) for candidates with log-probabilities and orders them by log P + eta * V."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb

from .vllm_fixture import VllmServer


async def test_rerank_generates_candidates_at_the_endpoint_and_orders_them(
    start_service: Any, vllm_server: VllmServer
) -> None:
    stub, service = await start_service(lm_base_url=vllm_server.base_url, lm_model=vllm_server.model_name)
    generation = pb.GenerationOptions(prompt="I tried", n=6, max_tokens=16, temperature=1.0, seed=7)
    reply = await stub.Rerank(pb.RerankRequest(generation=generation, eta=2.0, context=pb.ContentItem(category_id=24)))
    assert reply.lm_model == "tiny" and reply.model_version == service.model_version and reply.eta == 2.0
    out = list(reply.candidates)
    assert len(out) == 6 and [c.rank for c in out] == list(range(1, 7))
    for c in out:
        assert c.log_prob < 0 and c.token_count >= 1 and c.finish_reason in {"stop", "length"}
        assert c.combined_score == pytest.approx(c.log_prob + 2.0 * c.score.v)
        assert c.score.stage in {pb.STAGE_FULL, pb.STAGE_LIGHT}
    unblocked = [c.combined_score for c in out if not c.score.safety.blocked]
    assert unblocked == sorted(unblocked, reverse=True)


async def test_an_unreachable_endpoint_is_unavailable(start_service: Any) -> None:
    from creatormesh.common.runtime.processes import free_port

    stub, _ = await start_service(lm_base_url=f"http://127.0.0.1:{free_port()}/v1", lm_model="tiny")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Rerank(pb.RerankRequest(generation=pb.GenerationOptions(prompt="hello", n=2)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in (err.value.details() or "")
