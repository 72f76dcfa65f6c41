"""The policy's chat prompt and answer format, and strict parsing of answers.

Prompt: a system message naming the eight fairness principles with their weights
and the share bounds, and a user message with the creator's 17 seed inputs plus
region and content category as compact JSON. Answer: one JSON object,
``{"recommended_share": 0.62, "principle": "content_quality", "rationale": "..."}``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from creatormesh.allocation.fairness import Principle, Weights
from creatormesh.allocation.signals import SEED_FIELDS, CreatorSignals

#: What each principle asks for, in the seed's words (keyed by the wire name).
PRINCIPLE_TEXT: dict[str, str] = {
    "content_quality": "high-quality content receives a higher share",
    "traffic_contribution": "high-engagement content gets a better allocation",
    "newbie_support": "preferential treatment for new creators (under 6 months)",
    "niche_protection": "support high-quality content with a smaller audience",
    "loyalty_reward": "better treatment for consistent long-term creators",
    "geographic_fairness": "equal treatment across regions",
    "content_diversity": "encourage diverse content categories",
    "peak_performance": "reward peak-hour performance",
}

#: Largest rationale kept from a model answer (characters).
MAX_RATIONALE = 1000

Message = dict[str, str]

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?\s*```", re.DOTALL)


def principle_name(principle: Principle) -> str:
    """The wire name of a principle, e.g. ``newbie_support``."""
    return principle.name.lower()


def principle_from_name(name: str) -> Principle | None:
    """The principle with this wire name (case-insensitive), or None."""
    try:
        return Principle[name.strip().upper()]
    except KeyError:
        return None


def system_prompt(weights: Weights | None = None, min_share: float = 0.40, max_share: float = 0.80) -> str:
    """The system message: the principles with their weights, the bounds and the answer format."""
    w = weights or Weights.default()
    lines = [
        "You recommend the revenue share of a live-stream creator, fairly.",
        "Weigh these principles (weights sum to 100):",
    ]
    for principle in Principle:
        name = principle_name(principle)
        weight = w.values.get(principle, 0.0)
        lines.append(f"- {name} {weight:g}: {PRINCIPLE_TEXT.get(name, name.replace('_', ' '))}")
    lines.append(
        f"The share is a fraction of the revenue in [{min_share:.2f}, {max_share:.2f}]. "
        'Answer with one JSON object: {"recommended_share": <number>, "principle": "<main principle>", '
        '"rationale": "<short reason>"}'
    )
    return "\n".join(lines)


def _compact(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) > 1 else round(value, 4)
    return value


def signals_json(signals: CreatorSignals) -> str:
    """The creator's inputs as compact JSON, in the seed's order, then region and category."""
    data = signals.as_dict()
    out = {name: _compact(data[name]) for name in SEED_FIELDS}
    out["region"] = signals.region
    out["content_category"] = signals.content_category
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def build_messages(
    signals: CreatorSignals, weights: Weights | None = None, min_share: float = 0.40, max_share: float = 0.80
) -> list[Message]:
    """The chat prompt for one creator (the creator id is deliberately left out)."""
    return [
        {"role": "system", "content": system_prompt(weights, min_share, max_share)},
        {"role": "user", "content": signals_json(signals)},
    ]


def format_answer(share: float, principle: Principle | str, rationale: str) -> str:
    """The answer JSON the policy is trained to produce."""
    name = principle if isinstance(principle, str) else principle_name(principle)
    return json.dumps(
        {"recommended_share": round(float(share), 4), "principle": name, "rationale": rationale},
        ensure_ascii=False,
    )


@dataclass(frozen=True)
class ParsedAnswer:
    """A well-formed policy answer (its share is finite, not yet checked against bounds)."""

    share: float
    principle: Principle | None
    principle_text: str
    rationale: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"recommended_share must be a finite number, got {name}")


def parse_answer(text: str) -> ParsedAnswer:
    """Parse a policy answer: exactly one JSON object (optionally in a Markdown code
    fence) with a finite number ``recommended_share``, and string ``principle`` and
    ``rationale`` when present. Raises ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"answer must be text, got {type(text).__name__}")
    body = text.strip()
    fenced = _FENCE.fullmatch(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise ValueError("empty answer")
    try:
        obj = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"answer is not one JSON object: {exc.msg} at character {exc.pos}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"answer must be a JSON object, got {type(obj).__name__}")
    if "recommended_share" not in obj:
        raise ValueError("answer has no recommended_share")
    share = obj["recommended_share"]
    if isinstance(share, bool) or not isinstance(share, int | float):
        raise ValueError(f"recommended_share must be a number, got {type(share).__name__}")
    if not math.isfinite(share):
        raise ValueError(f"recommended_share must be a finite number, got {share}")
    principle_text = obj.get("principle", "")
    if principle_text is None:
        principle_text = ""
    if not isinstance(principle_text, str):
        raise ValueError(f"principle must be a string, got {type(principle_text).__name__}")
    rationale = obj.get("rationale", "")
    if rationale is None:
        rationale = ""
    if not isinstance(rationale, str):
        raise ValueError(f"rationale must be a string, got {type(rationale).__name__}")
    rationale = " ".join(rationale.split())[:MAX_RATIONALE]
    return ParsedAnswer(float(share), principle_from_name(principle_text), principle_text.strip(), rationale)
