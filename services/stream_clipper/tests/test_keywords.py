"""KeywordRules: the bundled YAML, scoring, and errors on malformed YAML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from creatormesh.stream_clipper.keywords import KeywordRules


@pytest.fixture(scope="module")
def rules() -> KeywordRules:
    return KeywordRules.load()


def test_bundled_rules_have_200_patterns_in_5_languages(rules: KeywordRules) -> None:
    assert len(rules.patterns) >= 200
    assert {"en", "es", "pt", "de", "fr"} <= rules.languages
    categories = {p.category for p in rules.patterns}
    assert {"hype", "laugh", "shock", "clutch", "fail"} <= categories
    assert all(p.weight > 0 for p in rules.patterns)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("NO WAY he did that", "no way"),
        ("that was a clutch", "clutch"),
        ("¡Increíble jugada!", "increíble"),
        ("meu deus, que isso", "meu deus"),
        ("alter, das ist krass", "krass"),
        ("c'est incroyable", "incroyable"),
    ],
)
def test_keywords_match_case_insensitively_in_several_languages(rules: KeywordRules, text: str, word: str) -> None:
    score, matched = rules.score(text)
    assert score > 0
    assert word in matched


def test_word_boundaries_and_plain_text(rules: KeywordRules) -> None:
    assert rules.score("we had a nice chat about the weather today") == (0.0, [])
    assert "ace" not in rules.score("the space race")[1]  # "ace" only as a whole word
    assert "clutch" not in rules.score("clutchbag")[1]


def test_more_hype_scores_higher_and_repeats_are_capped(rules: KeywordRules) -> None:
    one, _ = rules.score("no way")
    two, _ = rules.score("no way, clutch!")
    assert two > one
    many, _ = rules.score("clutch " * 10)
    three, _ = rules.score("clutch " * 3)
    assert many == three


def test_a_word_listed_in_many_languages_counts_once(rules: KeywordRules) -> None:
    score, matched = rules.score("clutch")
    assert matched == ["clutch"]
    assert score == pytest.approx(1.5)


def test_custom_file_and_per_pattern_weight(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "categories:\n  wow:\n    weight: 1.0\n    patterns:\n      en: [wow, {pattern: 'big+ win', weight: 4}]\n",
        encoding="utf-8",
    )
    rules = KeywordRules.load(path)
    assert rules.score("wow") == (1.0, ["wow"])
    assert rules.score("biggg WIN") == (4.0, ["biggg win"])


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("version: 1\n", "categories"),
        ("categories:\n  hype: 3\n", "categories.hype"),
        ("categories:\n  hype:\n    weight: lots\n    patterns: {en: [a]}\n", "categories.hype.weight"),
        ("categories:\n  hype:\n    weight: 1\n", "categories.hype.patterns"),
        ("categories:\n  hype:\n    weight: 1\n    patterns: {en: []}\n", "categories.hype.patterns.en"),
        ("categories:\n  hype:\n    weight: 1\n    patterns: {en: [ok, 5]}\n", "categories.hype.patterns.en[1]"),
        ("categories:\n  hype:\n    weight: 1\n    patterns: {de: ['(']}\n", "categories.hype.patterns.de[0]"),
    ],
)
def test_malformed_yaml_error_names_the_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match="^" + re.escape(key) + ":"):
        KeywordRules.load(path)


def test_yaml_that_does_not_parse_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("categories: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="does not parse"):
        KeywordRules.load(path)
