"""Prompt variations for a job's candidates: candidate 0 keeps the prompt as is; the others get rewrites from an
OpenAI-compatible LLM endpoint when one is configured, deterministic style rewrites otherwise (and whenever the
LLM fails). Different wordings give the user a real choice, and the pick tells the trainer which one worked."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .limits import MAX_PROMPT_CHARS

log = logging.getLogger(__name__)

#: Style directions for the deterministic rewrites, in order (one per extra candidate; wraps after the end).
STYLES = (
    "cinematic lighting, shallow depth of field",
    "close up shot, slow motion",
    "wide aerial view, golden hour",
    "vibrant neon colors, dynamic camera pan",
    "soft natural light, calm and minimal",
    "high contrast, fast cuts, energetic",
    "vintage film look, warm tones",
)

SYSTEM = (
    "You rewrite prompts for a text-to-video model that makes short ad videos. Keep the subject, brand and "
    "message; vary camera, lighting, setting and style. Answer with JSON only: "
    '{"prompts": ["...", "..."]} with exactly the number of prompts asked for, each under 300 characters.'
)


def rewrite(prompt: str, index: int) -> str:
    """The deterministic variation ``index`` of ``prompt`` (0 is the prompt itself)."""
    if index == 0:
        return prompt
    style = STYLES[(index - 1) % len(STYLES)]
    text = f"{prompt.rstrip().rstrip('.')}, {style}"
    return text[:MAX_PROMPT_CHARS]


def rewrites(prompt: str, count: int) -> list[str]:
    return [rewrite(prompt, i) for i in range(count)]


@dataclass(frozen=True)
class Variations:
    """The prompts for a job's candidates and where they came from ("llm", "rules" or "none")."""

    prompts: list[str]
    source: str
    error: str = ""


class PromptVariator:
    """Makes ``count`` prompts for a job. With ``base_url`` (e.g. ``http://vllm:8000/v1``) it asks
    ``POST {base_url}/chat/completions`` for ``count - 1`` rewrites (JSON reply, ``timeout_s`` for the whole
    call) and falls back to :func:`rewrites` on any failure: a timeout, an HTTP error, a reply that is not the
    asked-for JSON. Never raises for the endpoint's sake."""

    def __init__(self, base_url: str = "", model: str = "", api_key: str = "", timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), headers=headers) if base_url else None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def variations(self, prompt: str, count: int, vary: bool = True) -> Variations:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if not vary:
            return Variations([prompt] * count, "none")
        if self._client is None or count == 1:
            return Variations(rewrites(prompt, count), "rules")
        started = time.perf_counter()
        try:
            extra = await self._ask(prompt, count - 1)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("prompt rewrite by the LLM failed (%s); using the rule-based rewrites", reason)
            return Variations(rewrites(prompt, count), "rules", reason)
        log.debug("LLM rewrote the prompt in %.2f s", time.perf_counter() - started)
        return Variations([prompt, *extra], "llm")

    async def _ask(self, prompt: str, count: int) -> list[str]:
        assert self._client is not None
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Write {count} variations of this prompt: {prompt}"},
            ],
            "temperature": 0.7,
            "response_format": {"type": "json_object"},
        }
        response = await self._client.post(f"{self.base_url}/chat/completions", json=body)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        return parse_prompts(content, count)


def parse_prompts(content: str, count: int) -> list[str]:
    """The first ``count`` non-empty prompts of an LLM reply (JSON object with "prompts", or a JSON list, possibly
    inside a code fence); ValueError when it has fewer."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    data = json.loads(text)
    items = data.get("prompts") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("reply has no list of prompts")
    prompts = [str(p).strip()[:MAX_PROMPT_CHARS] for p in items if isinstance(p, str) and p.strip()]
    if len(prompts) < count:
        raise ValueError(f"asked for {count} prompts, got {len(prompts)}")
    return prompts[:count]
