"""Evaluation by an OpenAI-compatible vision chat endpoint (e.g. vLLM serving a VL model), with the
local evaluator as the fallback for every failure of the endpoint."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import httpx
from PIL import Image

from creatormesh.allocation.evaluation.images import MIME_TYPES, to_rgb
from creatormesh.allocation.evaluation.local import LocalEvaluator
from creatormesh.allocation.evaluation.model import (
    DIMENSIONS,
    VISION_LLM,
    Evaluation,
    Reason,
    StreamInput,
    decode_keyframes,
)

MAX_TRANSCRIPT_CHARS = 12_000
"""Transcript characters sent to the model (head and tail are kept when it is longer)."""
MAX_IMAGE_SIDE = 1024
"""Keyframes whose longer side exceeds this are downscaled and re-encoded as JPEG before sending."""
MAX_REASON_CHARS = 500
PLAIN_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P"})

SYSTEM_PROMPT = """You evaluate the quality of a live stream for a creator revenue-sharing platform.
You receive keyframes (images with their time in the stream), the transcript and engagement metrics.
Score four dimensions, each a number between 0 and 1 (0 = very poor, 0.5 = average, 1 = excellent):
- content_value: how valuable the content is to viewers (educational, informative, entertaining,
  original); spam, silence, repetition and empty filler are low value.
- visual_quality: technical and aesthetic quality of the picture: sharpness, exposure/lighting,
  colour, framing, resolution, visual variety.
- host_performance: the host's delivery: energy, clarity, fluency, and interaction with the
  audience (greeting viewers, answering the chat, asking questions).
- overall_rating: your overall judgement of the stream.
Judge only what you are given; if a part is missing (no keyframes or no transcript), score that
aspect 0.5 and say so.
Answer with one JSON object and nothing else, exactly of this form:
{"content_value": x, "visual_quality": x, "host_performance": x, "overall_rating": x,
 "reasons": {"content_value": "...", "visual_quality": "...", "host_performance": "...", "overall_rating": "..."}}
where each x is a number in [0, 1] and each reason is one short sentence."""

_FENCED = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL | re.IGNORECASE)


class ReplyError(ValueError):
    """The endpoint answered, but not with a usable evaluation."""


def truncate_transcript(text: str, limit: int = MAX_TRANSCRIPT_CHARS) -> str:
    """``text`` if short enough, else its first two thirds and last third of ``limit`` characters."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters omitted ...]\n{text[-tail:]}"


def image_data_url(data: bytes, image: Image.Image) -> str:
    """A ``data:`` URL for a keyframe (``data`` encoded, ``image`` decoded). The original bytes are sent
    unless the image is larger than :data:`MAX_IMAGE_SIDE` or in an unusual mode (CMYK, 16-bit): then
    a JPEG of at most :data:`MAX_IMAGE_SIDE` pixels is sent."""
    fmt = image.format or ""
    if max(image.size) > MAX_IMAGE_SIDE or image.mode not in PLAIN_MODES or fmt not in MIME_TYPES:
        small = to_rgb(image)
        small.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=85)
        data, fmt = buffer.getvalue(), "JPEG"
    return f"data:{MIME_TYPES[fmt]};base64,{base64.b64encode(data).decode('ascii')}"


def metrics_text(stream: StreamInput) -> str:
    m = stream.metrics
    lines = [
        f"Stream id: {stream.stream_id}",
        f"Duration: {m.duration_minutes:g} minutes",
        f"Peak viewers: {m.peak_viewers}, average viewers: {m.average_viewers}",
        f"Total comments: {m.total_comments}, total likes: {m.total_likes}",
    ]
    viewer_minutes = m.average_viewers * m.duration_minutes
    if viewer_minutes > 0:
        lines.append(
            f"Comments per viewer-minute: {m.total_comments / viewer_minutes:.4f}, "
            f"likes per viewer-minute: {m.total_likes / viewer_minutes:.4f}"
        )
    if m.peak_viewers > 0:
        lines.append(f"Retention (average/peak viewers): {m.average_viewers / m.peak_viewers:.2f}")
    return "\n".join(lines)


def build_messages(
    stream: StreamInput, images: Sequence[Image.Image], max_images: int
) -> tuple[list[dict[str, Any]], int]:
    """The chat messages for ``stream`` (``images``: its decoded keyframes) and the number of images
    attached (at most ``max_images``, spread evenly over the keyframes)."""
    chosen = list(range(len(stream.keyframes)))
    if len(chosen) > max_images:
        step = (len(chosen) - 1) / max(max_images - 1, 1)
        chosen = [round(i * step) for i in range(max_images)]
    transcript = stream.transcript.strip()
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "Engagement metrics:\n" + metrics_text(stream)},
        {
            "type": "text",
            "text": "Transcript:\n" + truncate_transcript(transcript) if transcript else "Transcript: (none)",
        },
    ]
    if not chosen:
        content.append({"type": "text", "text": "Keyframes: (none)"})
    for i in chosen:
        k = stream.keyframes[i]
        content.append({"type": "text", "text": f"Keyframe at {k.timestamp_seconds:g} s:"})
        content.append({"type": "image_url", "image_url": {"url": image_data_url(k.image_data, images[i])}})
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": content},
    ]
    return messages, len(chosen)


def extract_json(text: str) -> Any:
    """The JSON object in ``text``: the whole text, a ```json fenced block, or the outermost {...}."""
    text = text.strip()
    candidates = [text]
    fenced = _FENCED.search(text)
    if fenced:
        candidates.append(fenced.group(1))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ReplyError(f"no JSON object in the reply: {text[:120]!r}")


def parse_reply(body: Any) -> tuple[dict[str, float], list[Reason]]:
    """Scores and reasons from a chat-completions response body; :class:`ReplyError` unless every
    score is present, a number (not a bool) and in [0, 1]. Reasons are optional: a mapping from a
    dimension (or anything else, kept as a general remark) to text, or a list of texts."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ReplyError("the response has no choices[0].message.content") from exc
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise ReplyError("the reply is empty")
    data = extract_json(content)
    if not isinstance(data, dict):
        raise ReplyError(f"the reply is JSON but not an object: {type(data).__name__}")
    scores: dict[str, float] = {}
    for name in DIMENSIONS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReplyError(f"score {name} is missing or not a number: {value!r}")
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ReplyError(f"score {name}={value} is outside [0, 1]")
        scores[name] = float(value)
    reasons: list[Reason] = []
    raw = data.get("reasons")
    if isinstance(raw, Mapping):
        for key, text in raw.items():
            if isinstance(text, str) and text.strip():
                reasons.append(Reason(key if key in DIMENSIONS else "", text.strip()[:MAX_REASON_CHARS]))
    elif isinstance(raw, list):
        reasons.extend(Reason("", t.strip()[:MAX_REASON_CHARS]) for t in raw if isinstance(t, str) and t.strip())
    elif isinstance(raw, str) and raw.strip():
        reasons.append(Reason("", raw.strip()[:MAX_REASON_CHARS]))
    return scores, reasons


class VisionLLMEvaluator:
    """Asks ``POST {base_url}/chat/completions`` (OpenAI chat format; ``base_url`` like
    ``http://host:8000/v1``) for the four scores as strict JSON, sending the transcript (truncated),
    the metrics and up to ``max_images`` keyframes as base64 ``image_url`` data URLs, at temperature 0
    with ``response_format={"type": "json_object"}``.

    Never raises for a failure of the endpoint: on a timeout (``timeout_seconds`` for the whole call),
    a connection error, an HTTP error status or an unusable reply (no JSON, a missing or out-of-range
    score) it returns the ``fallback`` local evaluation with ``fallback=True`` and the reason. Input
    validation errors of the local evaluator still raise.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        fallback: LocalEvaluator,
        api_key: str = "",
        timeout_seconds: float = 20.0,
        max_images: int = 8,
    ) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.fallback = fallback
        self.timeout_seconds = timeout_seconds
        self.max_images = max_images
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()

    def request_body(self, stream: StreamInput) -> tuple[dict[str, Any], int]:
        """The chat-completions request for ``stream`` (validated first: raises InvalidArgument) and the
        number of images in it."""
        decoded = decode_keyframes(stream, self.fallback.limits)
        try:
            messages, images = build_messages(stream, decoded, self.max_images)
        finally:
            for image in decoded:
                image.close()
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        return body, images

    async def evaluate(self, stream: StreamInput) -> Evaluation:
        started = time.perf_counter()
        body, images = await asyncio.to_thread(self.request_body, stream)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._client.post(self.url, json=body)
            response.raise_for_status()
            try:
                payload = response.json()
            except ValueError as exc:
                raise ReplyError(f"the response body is not JSON: {response.text[:120]!r}") from exc
            scores, reasons = parse_reply(payload)
        except (TimeoutError, httpx.TimeoutException):
            return await self._fall_back(stream, f"vision endpoint timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPStatusError as exc:
            return await self._fall_back(
                stream, f"vision endpoint returned HTTP {exc.response.status_code}: {exc.response.text[:200]}"
            )
        except httpx.HTTPError as exc:
            return await self._fall_back(stream, f"vision endpoint unreachable: {type(exc).__name__}: {exc}")
        except ReplyError as exc:
            return await self._fall_back(stream, f"vision endpoint reply unusable: {exc}")
        elapsed = time.perf_counter() - started
        if not reasons:
            reasons.append(Reason("", "scored by the vision model (no reasons given)"))
        return Evaluation(
            stream_id=stream.stream_id,
            reasons=tuple(reasons),
            evaluator=VISION_LLM,
            version=self.model,
            measurements=MappingProxyType({"images_sent": float(images), "llm_latency_seconds": elapsed}),
            content_value=scores["content_value"],
            visual_quality=scores["visual_quality"],
            host_performance=scores["host_performance"],
            overall_rating=scores["overall_rating"],
        )

    async def _fall_back(self, stream: StreamInput, reason: str) -> Evaluation:
        result = await self.fallback.evaluate(stream)
        return dataclasses.replace(result, fallback=True, fallback_reason=reason)
