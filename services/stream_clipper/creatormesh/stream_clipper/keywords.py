"""Weighted keyword patterns (several languages) that score a transcript, loaded from YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "keywords.yaml"
"""Bundled rules (a file next to this module: the package is a namespace package, so no importlib.resources)."""

MAX_HITS_PER_PATTERN = 3
"""Repeats of one pattern in a text that still add to the score."""


@dataclass(frozen=True)
class KeywordPattern:
    """One compiled pattern with its category, language and weight."""

    category: str
    language: str
    source: str
    weight: float
    regex: re.Pattern[str]


def _compile(source: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(rf"(?<!\w)(?:{source})(?!\w)", re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{where}: bad regex {source!r}: {exc}") from exc


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: weight must be a number, got {value!r}")
    return float(value)


def _item(item: Any, default: float, where: str) -> tuple[str, float]:
    if isinstance(item, str) and item.strip():
        return item, default
    if isinstance(item, dict) and isinstance(item.get("pattern"), str):
        return item["pattern"], _weight(item.get("weight", default), f"{where}.weight")
    raise ValueError(f"{where}: a pattern must be a non-empty string or {{pattern, weight}}, got {item!r}")


def _parse(data: Any) -> list[KeywordPattern]:
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict) or not data["categories"]:
        raise ValueError("categories: missing or not a non-empty mapping")
    out: list[KeywordPattern] = []
    for name, body in data["categories"].items():
        where = f"categories.{name}"
        if not isinstance(body, dict):
            raise ValueError(f"{where}: must be a mapping with weight and patterns")
        weight = _weight(body.get("weight"), f"{where}.weight")
        langs = body.get("patterns")
        if not isinstance(langs, dict) or not langs:
            raise ValueError(f"{where}.patterns: must be a mapping of language -> list of patterns")
        for lang, items in langs.items():
            if not isinstance(items, list) or not items:
                raise ValueError(f"{where}.patterns.{lang}: must be a non-empty list")
            for i, raw in enumerate(items):
                spot = f"{where}.patterns.{lang}[{i}]"
                source, w = _item(raw, weight, spot)
                out.append(KeywordPattern(str(name), str(lang), source, w, _compile(source, spot)))
    return out


class KeywordRules:
    """Compiled keyword patterns; `score(text)` sums the weights of what matches."""

    def __init__(self, patterns: list[KeywordPattern]) -> None:
        self.patterns = tuple(patterns)

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeywordRules:
        """Rules from a YAML file; the bundled rules/keywords.yaml when `path` is None."""
        text = Path(DEFAULT_RULES if path is None else path).read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"keywords YAML does not parse: {exc}") from exc
        return cls(_parse(data))

    @property
    def languages(self) -> frozenset[str]:
        """Languages that have patterns ("any" included when present)."""
        return frozenset(p.language for p in self.patterns)

    def score(self, text: str) -> tuple[float, list[str]]:
        """Sum of weight x hits and the matched words (lowercased, first-seen order).

        Hits of one word are capped at MAX_HITS_PER_PATTERN, and a word matched by patterns of several languages
        in one category counts once (e.g. "clutch" is listed in en, es, pt, de and fr).
        """
        total = 0.0
        counted: set[tuple[str, str]] = set()
        matched: list[str] = []
        for pattern in self.patterns:
            hits = [m.group(0).lower() for m in pattern.regex.finditer(text)]
            for word in dict.fromkeys(hits):
                if (pattern.category, word) in counted:
                    continue
                counted.add((pattern.category, word))
                total += pattern.weight * min(hits.count(word), MAX_HITS_PER_PATTERN)
                if word not in matched:
                    matched.append(word)
        return total, matched
