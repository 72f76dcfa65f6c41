"""Brand safety and policy rules: blacklists block content, sensitive topics and clickbait lower V.

Rules come from YAML (the shipped default is rules/safety.yaml). Terms are matched on whole words after
normalisation (NFKC, casefold, accents dropped, l33t digits, look-alike letters), so "ＳＣＡＭ", "5c4m", "scaaam"
and "s.c.a.m" all match "scam" while "scampi" does not. Terms are compiled once into a token index.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RULES_PATH = Path(__file__).with_name("rules") / "safety.yaml"
_KEYS = (
    "max_penalty",
    "block_terms",
    "block_topics",
    "penalty_topics",
    "controversy_markers",
    "misinformation_markers",
    "shouting",
)
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        # Cyrillic and Greek look-alikes of Latin letters
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ο": "o",
        "α": "a",
    }
)
_SYMBOL_LETTER = re.compile(r"(?<=[^\W_])[@$]+")
_FORMAT = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")  # invisible characters
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")  # accents
_TOKEN = re.compile(r"[^\W_]+")
_REPEAT = re.compile(r"(.)\1+")
# three or more single letters/digits with up to 3 separators between them: "s c a m", "s.c.a.m", "s - c - a - m"
_SPELLED = re.compile(r"(?<![^\W_])[^\W_](?:[\W_]{1,3}[^\W_](?![^\W_])){2,}")
_MAX_SPELLED = 40  # longest spelled-out run searched for every shorter term inside it


def fold(text: str) -> str:
    """NFKC, no invisible format characters, casefold."""
    if text.isascii():
        return text.lower()
    return _FORMAT.sub("", unicodedata.normalize("NFKC", text)).casefold()


def skeleton(text: str) -> str:
    """fold(), then accents dropped and l33t digits / look-alike letters / inner @ and $ mapped to letters."""
    text = fold(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFD", text)))
    if "@" in text or "$" in text:
        text = _SYMBOL_LETTER.sub(lambda m: m.group().replace("@", "a").replace("$", "s"), text)
    return text.translate(_LEET)


def _counts(token: str) -> tuple[int, ...]:
    """Run lengths of repeated letters: "scaaam" -> (1, 1, 3, 1)."""
    return tuple(len(m.group()) for m in re.finditer(r"(.)\1*", token))


@dataclass(frozen=True)
class _Text:
    """A text as tokens: raw, with repeats collapsed, and the spelled-out runs joined ("s c a m" -> "scam")."""

    raw: list[str]
    collapsed: list[str]
    spelled: list[str]

    @classmethod
    def parse(cls, text: str) -> _Text:
        spelled: list[str] = []

        def join(m: re.Match[str]) -> str:
            spelled.append("".join(_TOKEN.findall(m.group())))
            return spelled[-1]

        skel = skeleton(text)
        if _SPELLED.search(skel):
            skel = _SPELLED.sub(join, skel)
        return cls(_TOKEN.findall(skel), _TOKEN.findall(_REPEAT.sub(r"\1", skel)), spelled)


@dataclass(frozen=True)
class _Term:
    """A rule term as collapsed tokens, with the run lengths it needs where a letter is doubled ("ass")."""

    collapsed: tuple[str, ...]
    counts: tuple[tuple[int, ...] | None, ...]
    category: int
    term: str

    @classmethod
    def parse(cls, tokens: Sequence[str], category: int, term: str) -> _Term:
        counts = tuple(c if max(c) > 1 else None for c in map(_counts, tokens))
        return cls(tuple(_REPEAT.sub(r"\1", t) for t in tokens), counts, category, term)

    def covers(self, raw: Sequence[str]) -> bool:
        """Each letter repeated at least as often as in the term ("scaaam" covers "scam", "as" not "ass")."""
        for need, token in zip(self.counts, raw, strict=True):
            if need is not None and not all(a >= b for a, b in zip(_counts(token), need, strict=True)):
                return False
        return True


@dataclass(frozen=True)
class _Category:
    kind: str  # block_term, block_topic, penalty, controversy, misinformation
    name: str
    penalty: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class _Matcher:
    """Terms indexed by their first collapsed token; regex patterns ('re:') compiled once per category."""

    index: dict[str, list[_Term]]
    patterns: tuple[tuple[int, re.Pattern[str]], ...]

    @classmethod
    def build(cls, categories: Sequence[_Category]) -> _Matcher:
        index: dict[str, list[_Term]] = {}
        patterns: list[tuple[int, re.Pattern[str]]] = []
        for ci, cat in enumerate(categories):
            regexes = [t[3:] for t in cat.terms if t.startswith("re:")]
            if regexes:
                patterns.append((ci, re.compile("|".join(f"(?:{r})" for r in regexes))))
            for term in cat.terms:
                if term.startswith("re:"):
                    continue
                tokens = _TOKEN.findall(skeleton(term))
                for variant in {tuple(tokens), ("".join(tokens),)}:  # "self harm" also matches "selfharm"
                    parsed = _Term.parse(variant, ci, term)
                    index.setdefault(parsed.collapsed[0], []).append(parsed)
        return cls(index, tuple(patterns))

    def find(self, text: str) -> set[tuple[int, str]]:
        """(category index, term) for every rule the text matches."""
        hits: set[tuple[int, str]] = set()
        parsed = _Text.parse(text)
        collapsed = parsed.collapsed
        for pos, key in enumerate(collapsed):
            for term in self.index.get(key, ()):
                end = pos + len(term.collapsed)
                if tuple(collapsed[pos:end]) == term.collapsed and term.covers(parsed.raw[pos:end]):
                    hits.add((term.category, term.term))
        for spelled in parsed.spelled:  # "don't s c a m": every sub-run of three or more letters
            run = spelled[:_MAX_SPELLED]
            for a in range(len(run)):
                for b in range(a + 3, len(run) + 1):
                    piece = run[a:b]
                    for term in self.index.get(_REPEAT.sub(r"\1", piece), ()):
                        if len(term.collapsed) == 1 and term.covers([piece]):
                            hits.add((term.category, term.term))
        if self.patterns:
            folded = fold(text)
            for ci, pattern in self.patterns:
                hits.update((ci, m.group()) for m in pattern.finditer(folded))
        return hits


@dataclass(frozen=True)
class SafetyVerdict:
    """blocked content scores 0; otherwise V is scaled by (1 - penalty)."""

    blocked: bool
    penalty: float  # 1.0 when blocked
    reasons: tuple[str, ...]
    matched_terms: tuple[str, ...]

    def apply(self, v: float) -> float:
        return 0.0 if self.blocked else v * (1.0 - self.penalty)


@dataclass(frozen=True)
class SafetyRules:
    """Compiled safety rules; build with load() or from_dict()."""

    version: str  # short hash of the normalised rules
    max_penalty: float
    categories: tuple[_Category, ...]
    shouting_penalty: float
    shouting_min_letters: int
    shouting_caps_ratio: float
    _matcher: _Matcher = field(repr=False, compare=False)

    @classmethod
    def load(cls, path: Path | None = None) -> SafetyRules:
        path = RULES_PATH if path is None else path
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"safety rules {path.name}: not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ValueError(f"safety rules {path.name}: the top level must be a mapping of {', '.join(_KEYS)}")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SafetyRules:
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ValueError(f"safety rules: unknown key {unknown[0]!r} (allowed: {', '.join(_KEYS)})")
        max_penalty = _fraction(data.get("max_penalty", 0.9), "max_penalty")
        cats = [
            _Category("block_term", term, 1.0, (term,)) for term in _terms(data.get("block_terms", []), "block_terms")
        ]
        for name, terms in _mapping(data.get("block_topics", {}), "block_topics").items():
            cats.append(_Category("block_topic", str(name), 1.0, _terms(terms, f"block_topics.{name}")))
        for name, spec in _mapping(data.get("penalty_topics", {}), "penalty_topics").items():
            cats.append(_penalised("penalty", str(name), spec, f"penalty_topics.{name}"))
        for kind in ("controversy", "misinformation"):
            key = f"{kind}_markers"
            if key in data:
                cats.append(_penalised(kind, f"{kind} marker", data[key], key))
        shout = _mapping(data.get("shouting", {"penalty": 0.0}), "shouting")
        extra = sorted(set(shout) - {"penalty", "min_letters", "caps_ratio"})
        if extra:
            raise ValueError(f"safety rules: unknown key 'shouting.{extra[0]}'")
        shouting = (
            _fraction(shout.get("penalty", 0.0), "shouting.penalty"),
            _count(shout.get("min_letters", 20), "shouting.min_letters"),
            _fraction(shout.get("caps_ratio", 0.7), "shouting.caps_ratio"),
        )
        normal = json.dumps([max_penalty, [vars(c) for c in cats], shouting], sort_keys=True, ensure_ascii=False)
        version = hashlib.sha256(normal.encode()).hexdigest()[:12]
        return cls(version, max_penalty, tuple(cats), *shouting, _Matcher.build(cats))

    def check(self, texts: Sequence[str], tags: Sequence[str] = ()) -> SafetyVerdict:
        """Every text and every tag is checked on its own; one reason per matched rule."""
        hits: set[tuple[int, str]] = set()
        for text in (*texts, *tags):
            hits |= self._matcher.find(text)
        by_cat: dict[int, list[str]] = {}
        for ci, term in sorted(hits):
            by_cat.setdefault(ci, []).append(term)
        reasons: list[str] = []
        keep = 1.0
        blocked = False
        for ci, terms in sorted(by_cat.items()):
            cat = self.categories[ci]
            quoted = ", ".join(repr(t) for t in terms)
            if cat.kind == "block_term":
                blocked = True
                reasons.append(f"blocked: blacklisted term {cat.name!r}")
            elif cat.kind == "block_topic":
                blocked = True
                reasons.append(f"blocked: topic {cat.name!r} ({quoted})")
            elif cat.penalty > 0:
                keep *= 1.0 - cat.penalty
                reasons.append(f"penalty {cat.penalty:.2f}: {cat.name} ({quoted})")
        ratio = max((_caps_ratio(t, self.shouting_min_letters) for t in texts if self.shouting_penalty), default=0.0)
        if ratio > self.shouting_caps_ratio:
            keep *= 1.0 - self.shouting_penalty
            reasons.append(
                f"penalty {self.shouting_penalty:.2f}: controversy marker (ALL-CAPS shouting, {ratio:.0%} capitals)"
            )
        reasons.sort(key=lambda r: not r.startswith("blocked"))
        penalty = 1.0 if blocked else min(1.0 - keep, self.max_penalty)
        matched = tuple(sorted({term for _, term in hits}))
        return SafetyVerdict(blocked, round(penalty, 6), tuple(reasons), matched)


def _caps_ratio(text: str, min_letters: int) -> float:
    """Share of capitals among cased letters; 0 when the text has fewer than min_letters of them."""
    text = unicodedata.normalize("NFKC", text)
    upper = sum(map(str.isupper, text))
    cased = upper + sum(map(str.islower, text))
    return upper / cased if cased >= max(min_letters, 1) else 0.0


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"safety rules: {key!r} must be a mapping, got {type(value).__name__}")
    return value


def _terms(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ValueError(f"safety rules: {key!r} must be a list of non-empty strings")
    for term in value:
        if term.startswith("re:"):
            try:
                re.compile(term[3:])
            except re.error as exc:
                raise ValueError(f"safety rules: {key!r} has a bad pattern {term!r}: {exc}") from exc
        elif not _TOKEN.search(skeleton(term)):
            raise ValueError(f"safety rules: {key!r} term {term!r} has no letters or digits")
    return tuple(dict.fromkeys(t.strip() for t in value))


def _penalised(kind: str, name: str, spec: Any, key: str) -> _Category:
    spec = _mapping(spec, key)
    extra = sorted(set(spec) - {"penalty", "terms"})
    if extra:
        raise ValueError(f"safety rules: unknown key '{key}.{extra[0]}' (allowed: penalty, terms)")
    if "penalty" not in spec:
        raise ValueError(f"safety rules: '{key}.penalty' is missing")
    return _Category(
        kind, name, _fraction(spec["penalty"], f"{key}.penalty"), _terms(spec.get("terms"), f"{key}.terms")
    )


def _fraction(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"safety rules: {key!r} must be a number in [0, 1], got {value!r}")
    return float(value)


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"safety rules: {key!r} must be a non-negative integer, got {value!r}")
    return value
