"""Serving the trained policy, always behind the engine.

Two policies propose a share: :class:`LocalPolicy` (base model + LoRA adapter from
local directories, greedy decoding with transformers/peft, CPU is fine) and
:class:`EndpointPolicy` (an OpenAI-compatible ``/v1/chat/completions`` endpoint,
e.g. vLLM serving the LoRA). Neither is trusted: :func:`repair` has the engine
validate every proposal — an unusable answer falls back to the engine's share, a
share outside the engine's bounds is clamped, and a share further than
``tolerance`` from the engine's is pulled back into the band — so every share is
valid and explained. ``peft`` is imported only when an adapter is loaded.
"""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from creatormesh.allocation.fairness import Assessment, Context, FairnessEngine, Weights
from creatormesh.allocation.policy.prompts import Message, build_messages, parse_answer
from creatormesh.allocation.signals import CreatorSignals

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_TOLERANCE = 0.15


@dataclass(frozen=True)
class Proposal:
    """What a policy answered: ``share`` is None when the answer is unusable (``error`` says why)."""

    share: float | None
    rationale: str
    raw: str
    error: str = ""
    principle: str = ""


@dataclass(frozen=True)
class Decision:
    """The share actually used, after the engine's checks.

    ``fallback``: the engine's own share replaced an unusable proposal. ``reason``:
    empty when the proposal was used as is, else what the engine changed and why."""

    share: float
    rationale: str
    fallback: bool
    reason: str
    engine_share: float = math.nan
    proposed_share: float | None = None
    assessment: Assessment | None = None

    @property
    def adjusted(self) -> bool:
        return bool(self.reason) and not self.fallback


class Policy(Protocol):
    """Anything that proposes a share for a creator."""

    async def propose(self, creator_id: str, signals: CreatorSignals) -> Proposal: ...


def proposal_from_text(raw: str) -> Proposal:
    """Parse a model's answer into a :class:`Proposal` (never raises)."""
    try:
        answer = parse_answer(raw)
    except ValueError as exc:
        return Proposal(None, "", raw, str(exc))
    return Proposal(answer.share, answer.rationale, raw, "", answer.principle_text)


def repair(
    proposal: Proposal,
    engine: FairnessEngine,
    creator_id: str,
    signals: CreatorSignals,
    context: Context | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Decision:
    """The engine's verdict on a proposal (see the module docstring for the rules)."""
    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be in [0, 1], got {tolerance}")
    assessment = engine.assess(creator_id, signals, context)
    engine_share = engine.recommended_share(assessment)
    low, high = engine.min_share, engine.max_share
    share = proposal.share
    if share is None or isinstance(share, bool) or not math.isfinite(share):
        why = proposal.error or ("the policy gave no share" if share is None else f"the share {share} is not finite")
        return Decision(
            engine_share,
            assessment.rationale,
            True,
            f"policy answer unusable ({why}); the engine's share is used",
            engine_share,
            None,
            assessment,
        )
    fixed = float(share)
    reasons: list[str] = []
    if not low <= fixed <= high:
        fixed = min(max(fixed, low), high)
        reasons.append(f"share {share:.4g} outside [{low:.2f}, {high:.2f}], clamped to {fixed:.4f}")
    band_low, band_high = max(low, engine_share - tolerance), min(high, engine_share + tolerance)
    if not band_low - 1e-12 <= fixed <= band_high + 1e-12:
        before = fixed
        fixed = min(max(fixed, band_low), band_high)
        reasons.append(
            f"share {before:.4f} deviates from the engine's {engine_share:.4f} by more than {tolerance:.2f}, "
            f"pulled back to {fixed:.4f}"
        )
    rationale = proposal.rationale.strip() or assessment.rationale
    reason = "; ".join(reasons)
    if reason:
        rationale = f"{rationale} (Engine check: {reason}.)"
    return Decision(fixed, rationale, False, reason, engine_share, float(share), assessment)


class LocalPolicy:
    """The policy run in-process: a base causal LM (a local directory) plus an optional
    LoRA adapter directory, greedy decoding. Generation runs in a worker thread, one
    call at a time; after ``timeout`` seconds the call gives up (the running generation
    finishes in the background) and the proposal is unusable, so the engine decides.
    Loading takes seconds on the real model: construct it in a thread at startup."""

    def __init__(
        self,
        model_dir: str | Path,
        adapter_dir: str | Path | None = None,
        weights: Weights | None = None,
        min_share: float = 0.40,
        max_share: float = 0.80,
        max_new_tokens: int = 160,
        device: str | None = None,
        timeout: float | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        self.adapter_dir = Path(adapter_dir) if adapter_dir else None
        self.weights = weights
        self.min_share = min_share
        self.max_share = max_share
        self.max_new_tokens = max_new_tokens
        self.timeout = timeout
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        model: Any = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype, local_files_only=True)
        if self.adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(self.adapter_dir), is_trainable=False)
        self.model: PreTrainedModel = model.to(self.device).eval()
        self._lock = threading.Lock()

    def messages(self, signals: CreatorSignals) -> list[Message]:
        return build_messages(signals, self.weights, self.min_share, self.max_share)

    def generate(self, messages: list[Message]) -> str:
        """Greedy completion of a chat prompt (blocking)."""
        import torch

        encoded: Any = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        with self._lock, torch.inference_mode():
            output = self.model.generate(  # type: ignore[operator]
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        text = self.tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)
        return text if isinstance(text, str) else "".join(text)

    async def propose(self, creator_id: str, signals: CreatorSignals) -> Proposal:
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(self.generate, self.messages(signals)), self.timeout)
        except TimeoutError:
            return Proposal(None, "", "", f"local policy timed out after {self.timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - a failing model must not fail the call: the engine decides
            return Proposal(None, "", "", f"local policy failed: {type(exc).__name__}: {exc}")
        return proposal_from_text(raw)


class EndpointPolicy:
    """The policy behind an OpenAI-compatible chat endpoint (e.g. vLLM with
    ``--enable-lora --lora-modules allocation-policy=ADAPTER_DIR``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        timeout: float = 20.0,
        api_key: str = "",
        weights: Weights | None = None,
        min_share: float = 0.40,
        max_share: float = 0.80,
        max_tokens: int = 200,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base + "/chat/completions" if base.endswith("/v1") else base + "/v1/chat/completions"
        self.model = model
        self.timeout = timeout
        self.weights = weights
        self.min_share = min_share
        self.max_share = max_share
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout, headers=headers)
        if client is not None and headers:
            self.client.headers.update(headers)

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def propose(self, creator_id: str, signals: CreatorSignals) -> Proposal:
        body = {
            "model": self.model,
            "messages": build_messages(signals, self.weights, self.min_share, self.max_share),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        try:
            response = await self.client.post(self.url, json=body, timeout=self.timeout)
        except httpx.TimeoutException:
            return Proposal(None, "", "", f"policy endpoint timed out after {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Proposal(None, "", "", f"policy endpoint unreachable: {type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return Proposal(None, "", response.text[:500], f"policy endpoint answered HTTP {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Proposal(None, "", response.text[:500], "policy endpoint returned a malformed chat completion")
        if not isinstance(content, str):
            return Proposal(None, "", str(content)[:500], "policy endpoint returned no text")
        return proposal_from_text(content)
