"""CompletionsClient against a real vLLM (CPU) server running a tiny local LM (fixture ``vllm_server``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from creatormesh.common.runtime.processes import free_port
from creatormesh.viral_scoring.lm_client import CompletionsClient, Generated, GenerationParams, LMEndpointError

PROMPT = "Watch me build"


def _ids_by_piece(tok: Any) -> dict[str, int]:
    """Token id by its decoded text, for the tokens whose text is whole (not a partial UTF-8 byte)."""
    pieces: dict[str, int] = {}
    for i in range(len(tok)):
        piece = tok.backend_tokenizer.decode([i], skip_special_tokens=False)
        if piece and "\ufffd" not in piece:
            assert piece not in pieces, f"two tokens decode to {piece!r}"
            pieces[piece] = i
    return pieces


def _token_ids(cand: Generated, pieces: dict[str, int], eos_id: int) -> list[int] | None:
    """The generated token ids, or None when a token can't be identified from its text (a stray byte)."""
    ids = []
    for n, piece in enumerate(cand.tokens):
        if piece in pieces:
            ids.append(pieces[piece])
        elif n == len(cand.tokens) - 1 and cand.finish_reason == "stop" and piece in ("", "<|im_end|>"):
            ids.append(eos_id)
        else:
            return None
    return ids


def _hf_log_prob(model: Any, prompt_ids: list[int], ids: list[int]) -> float:
    """Sum of log p(token | prefix) for ``ids`` after ``prompt_ids``, by a plain transformers forward pass."""
    full = torch.tensor([prompt_ids + ids])
    with torch.no_grad():
        logits = model(input_ids=full).logits[0].double()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    positions = range(len(prompt_ids) - 1, full.shape[1] - 1)
    return float(sum(logp[p, full[0, p + 1]] for p in positions))


async def test_generate_returns_n_candidates_with_log_probs(vllm_server: Any) -> None:
    client = CompletionsClient(vllm_server.base_url, vllm_server.model_name)
    try:
        model, cands = await client.generate(GenerationParams(PROMPT, n=4, max_tokens=24, seed=0))
    finally:
        await client.aclose()
    assert model == "tiny"
    assert len(cands) == 4
    for cand in cands:
        assert math.isfinite(cand.log_prob)
        assert cand.log_prob <= 0.0
        assert 1 <= cand.token_count <= 24
        assert len(cand.tokens) == cand.token_count
        assert cand.finish_reason in ("stop", "length")


async def test_log_prob_matches_a_transformers_forward_pass(vllm_server: Any) -> None:
    model_dir: Path = vllm_server.model_dir
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    model.eval()
    pieces = _ids_by_piece(tok)
    prompt_ids = tok(PROMPT)["input_ids"]
    client = CompletionsClient(vllm_server.base_url, "unused-default")
    try:
        params = GenerationParams(PROMPT, n=8, max_tokens=12, temperature=0.9, seed=3, model="tiny")
        _, cands = await client.generate(params)
    finally:
        await client.aclose()
    checked = 0
    for cand in cands:
        ids = _token_ids(cand, pieces, tok.eos_token_id)
        if ids is None:
            continue
        assert tok.decode(ids, skip_special_tokens=True) == cand.text
        expected = _hf_log_prob(model, prompt_ids, ids)
        assert cand.log_prob == pytest.approx(expected, abs=1e-3 * cand.token_count)
        checked += 1
    assert checked >= 2, f"only {checked} of {len(cands)} candidates had identifiable tokens: {cands}"


async def test_unreachable_endpoint_raises_clear_error() -> None:
    port = free_port()  # nothing listens there
    client = CompletionsClient(f"http://127.0.0.1:{port}/v1", "tiny", timeout=5.0)
    try:
        with pytest.raises(LMEndpointError, match=rf"127\.0\.0\.1:{port}/v1/completions is unreachable"):
            await client.generate(GenerationParams(PROMPT, n=2, max_tokens=4))
    finally:
        await client.aclose()


async def test_unknown_model_is_an_http_error(vllm_server: Any) -> None:
    client = CompletionsClient(vllm_server.base_url, "no-such-model")
    try:
        with pytest.raises(LMEndpointError, match=r"answered HTTP 404"):
            await client.generate(GenerationParams(PROMPT, n=1, max_tokens=4))
    finally:
        await client.aclose()
