"""Client for an OpenAI-compatible ``/v1/completions`` endpoint (vLLM in production) that returns log-probs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class GenerationParams:
    """One completions request: ``n`` candidates for ``prompt``."""

    prompt: str
    n: int = 16
    temperature: float = 0.9
    max_tokens: int = 256
    model: str = ""
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Generated:
    """One candidate: its text, the sum of its token log-probs (natural log) and its token count.

    ``tokens`` are the token strings the endpoint reported, in order (for checks and debugging).
    """

    text: str
    log_prob: float
    token_count: int
    finish_reason: str
    tokens: tuple[str, ...] = ()


class LMEndpointError(Exception):
    """The LM endpoint is unreachable, answered with an HTTP error, or returned no log-probs."""


class CompletionsClient:
    """Async client for ``POST {base_url}/completions`` (``base_url`` like ``http://127.0.0.1:8000/v1``)."""

    def __init__(self, base_url: str, model: str, *, timeout: float = 30.0, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(timeout=timeout, headers=headers)

    def _body(self, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": params.model or self.model,
            "prompt": params.prompt,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "logprobs": 1,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    async def generate(self, params: GenerationParams) -> tuple[str, list[Generated]]:
        """Ask for ``params.n`` candidates; return the model name the endpoint reports and the candidates."""
        url = f"{self.base_url}/completions"
        try:
            resp = await self._http.post(url, json=self._body(params))
        except httpx.TimeoutException as exc:
            raise LMEndpointError(f"LM endpoint {url} timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise LMEndpointError(f"LM endpoint {url} is unreachable: {exc!r}") from exc
        if resp.status_code >= 400:
            raise LMEndpointError(f"LM endpoint {url} answered HTTP {resp.status_code}: {resp.text[:500]}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise LMEndpointError(f"LM endpoint {url} answered with invalid JSON: {resp.text[:200]!r}") from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise LMEndpointError(f"LM endpoint {url} answered without 'choices': {resp.text[:200]!r}")
        ordered = sorted(choices, key=lambda c: int(c.get("index", 0)))
        model = str(data.get("model") or params.model or self.model)
        return model, [_candidate(choice, url) for choice in ordered]

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()


def _candidate(choice: dict[str, Any], url: str) -> Generated:
    logprobs = choice.get("logprobs")
    token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if not isinstance(token_logprobs, list):
        raise LMEndpointError(f"LM endpoint {url} returned a choice without logprobs (does it support 'logprobs'?)")
    values = [float(x) for x in token_logprobs if x is not None]
    if len(values) != len(token_logprobs) or not all(math.isfinite(x) for x in values):
        raise LMEndpointError(f"LM endpoint {url} returned missing or non-finite token log-probs: {token_logprobs!r}")
    tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
    return Generated(
        text=str(choice.get("text", "")),
        log_prob=math.fsum(values),
        token_count=len(values),
        finish_reason=str(choice.get("finish_reason") or ""),
        tokens=tuple(str(t) for t in tokens) if isinstance(tokens, list) else (),
    )
