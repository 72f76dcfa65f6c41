from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from creatormesh.viral_scoring.safety import RULES_PATH, SafetyRules, SafetyVerdict

SHIPPED = SafetyRules.load()
RAW: dict[str, Any] = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


def small_rules(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "max_penalty": 0.5,
        "block_terms": ["giveaway scam"],
        "block_topics": {"scams": ["double your bitcoin"]},
        "penalty_topics": {
            "violence": {"penalty": 0.4, "terms": ["gore"]},
            "gambling": {"penalty": 0.3, "terms": ["casino"]},
            "profanity": {"penalty": 0.2, "terms": ["damn", "ass"]},
        },
        "controversy_markers": {"penalty": 0.15, "terms": ["you won't believe", "re:!{3,}"]},
        "misinformation_markers": {"penalty": 0.25, "terms": ["miracle cure"]},
        "shouting": {"penalty": 0.1, "min_letters": 20, "caps_ratio": 0.7},
    }
    data.update(changes)
    return data


def test_shipped_rules_load_and_cover_every_list() -> None:
    assert SHIPPED.version == SafetyRules.load(RULES_PATH).version
    assert len(SHIPPED.version) == 12
    kinds = {c.kind for c in SHIPPED.categories}
    assert kinds == {"block_term", "block_topic", "penalty", "controversy", "misinformation"}
    assert SHIPPED.max_penalty == RAW["max_penalty"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("join our giveaway scam today", "blocked: blacklisted term 'giveaway scam'"),
        ("try this free money glitch", "blocked: topic 'scams' ('free money glitch')"),
        ("how to kill yourself quickly", "blocked: topic 'self_harm_instructions' ('how to kill yourself')"),
        ("damn, that was close", "penalty 0.20: profanity ('damn')"),
        ("best casino bonus", "penalty 0.30: gambling ('casino')"),
        ("uncut gore footage", "penalty 0.40: violence/graphic ('gore')"),
        ("you won't believe what happened", 'penalty 0.15: controversy marker ("you won\'t believe")'),
        ("this miracle cure works", "penalty 0.25: misinformation marker ('miracle cure')"),
        ("wait for it!!!", "penalty 0.15: controversy marker ('!!!')"),
    ],
)
def test_shipped_lists_give_the_reason(text: str, reason: str) -> None:
    verdict = SHIPPED.check([text])
    assert reason in verdict.reasons
    assert verdict.blocked == reason.startswith("blocked")
    assert verdict.penalty == (1.0 if verdict.blocked else float(reason.split()[1].rstrip(":")))


@pytest.mark.parametrize(
    "text",
    [
        "sc4m",
        "ｓ ｃ ａ ｍ",
        "s..c..a..m",
        "5 c 4 m",
        "5c4m",
        "SCAM",
        "ＳＣＡＭ",
        "scaaaam",
        "ssscammm",
        "s.c.a.m",
        "s c a m",
        "s-c-a-m",
        "don't s c a m",
        "sc\u200bam",
    ],
)
def test_evasions_are_caught(text: str) -> None:
    verdict = SHIPPED.check([f"this is a {text} for sure"])
    assert verdict.matched_terms == ("scam",)
    assert verdict.reasons == ("penalty 0.20: fraud ('scam')",)


@pytest.mark.parametrize(
    "text", ["a$$", "a55", "A S S", "aaasss", "sh1tty", "#GiveawayScam", "g1veaway sc4m", "Dоuble yоur bitcоin"]
)
def test_more_evasions(text: str) -> None:
    assert SHIPPED.check([text]).penalty > 0


@pytest.mark.parametrize(
    "text",
    [
        "garlic scampi for dinner",
        "first class seats",
        "assess the bass as a pass",
        "as you can see",
        "the method works",
        "a hello from helsinki",
        "storage and engagement",
        "scamper off, grapefruit",
    ],
)
def test_substrings_of_ordinary_words_do_not_match(text: str) -> None:
    verdict = SHIPPED.check([text])
    assert verdict == SafetyVerdict(False, 0.0, (), ())


def test_clean_text_has_no_penalty() -> None:
    verdict = SHIPPED.check(["Three quick pasta recipes for busy weeknights"], tags=["food", "recipes"])
    assert not verdict.blocked
    assert verdict.penalty == 0.0
    assert verdict.reasons == ()
    assert verdict.apply(0.8) == 0.8


def test_penalties_combine_and_are_capped() -> None:
    rules = SafetyRules.from_dict(small_rules(max_penalty=0.9))
    verdict = rules.check(["damn casino"])
    assert verdict.penalty == pytest.approx(1 - 0.8 * 0.7)
    assert len(verdict.reasons) == 2
    capped = SafetyRules.from_dict(small_rules(max_penalty=0.5)).check(["damn casino gore miracle cure"])
    assert capped.penalty == 0.5
    assert not capped.blocked
    once = rules.check(["damn damn damn", "damn"])  # a rule counts once however often it hits
    assert once.penalty == pytest.approx(0.2)


def test_apply_maths() -> None:
    assert SafetyVerdict(False, 0.25, (), ()).apply(0.8) == pytest.approx(0.6)
    assert SafetyVerdict(True, 1.0, ("blocked: x",), ("x",)).apply(0.8) == 0.0
    assert SafetyVerdict(False, 0.0, (), ()).apply(0.3) == 0.3


def test_blocked_scores_zero_and_lists_every_reason() -> None:
    verdict = SHIPPED.check(["giveaway scam, damn"])
    assert verdict.blocked
    assert verdict.apply(0.99) == 0.0
    assert verdict.reasons[0] == "blocked: blacklisted term 'giveaway scam'"
    assert "penalty 0.20: profanity ('damn')" in verdict.reasons


def test_shouting_is_penalised() -> None:
    rules = SafetyRules.from_dict(small_rules())
    loud = rules.check(["THIS IS THE BEST VIDEO EVER MADE WATCH NOW"])
    assert loud.penalty == pytest.approx(0.1)
    assert loud.reasons[0].startswith("penalty 0.10: controversy marker (ALL-CAPS shouting, 100% capitals")
    assert rules.check(["NASA and the ESA launch"]).penalty == 0.0  # too few letters
    assert rules.check(["This is the best video ever made, watch now"]).penalty == 0.0


def test_version_changes_when_a_rule_changes() -> None:
    base = SafetyRules.from_dict(small_rules())
    assert base.version == SafetyRules.from_dict(small_rules()).version
    changed = small_rules()
    changed["penalty_topics"]["gambling"]["penalty"] = 0.35
    assert SafetyRules.from_dict(changed).version != base.version
    assert SafetyRules.from_dict(small_rules(block_terms=["giveaway scam", "x y"])).version != base.version
    assert SafetyRules.from_dict(small_rules(max_penalty=0.6)).version != base.version


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"block_term": ["x"]}, "block_term"),
        ({"max_penalty": 1.5}, "max_penalty"),
        ({"block_terms": "scam"}, "block_terms"),
        ({"block_terms": ["ok", ""]}, "block_terms"),
        ({"block_topics": {"hate": "word"}}, "block_topics.hate"),
        ({"penalty_topics": {"gambling": {"penalty": "high", "terms": ["casino"]}}}, "penalty_topics.gambling.penalty"),
        ({"penalty_topics": {"gambling": {"terms": ["casino"]}}}, "penalty_topics.gambling.penalty"),
        ({"penalty_topics": {"gambling": {"penalty": 0.3, "term": ["casino"]}}}, "penalty_topics.gambling.term"),
        ({"misinformation_markers": {"penalty": 0.2, "terms": ["re:(unclosed"]}}, "misinformation_markers"),
        ({"shouting": {"penalty": 0.1, "caps": 0.5}}, "shouting.caps"),
        ({"shouting": {"min_letters": -1}}, "shouting.min_letters"),
    ],
)
def test_malformed_rules_name_the_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        SafetyRules.from_dict(small_rules(**change))


def test_malformed_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("block_terms: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        SafetyRules.load(bad)
    bad.write_text("penalty_topics:\n  gambling:\n    penalty: 2\n    terms: [casino]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"penalty_topics\.gambling\.penalty"):
        SafetyRules.load(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(small_rules()), encoding="utf-8")
    assert SafetyRules.load(good).check(["casino"]).penalty == pytest.approx(0.3)


def test_tags_are_checked() -> None:
    verdict = SHIPPED.check(["a nice day out"], tags=["fun", "#GiveawayScam"])
    assert verdict.blocked
    assert verdict.matched_terms == ("giveaway scam",)
    assert SHIPPED.check(["a nice day out"], tags=["casino"]).penalty == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("qué mierda", "mierda"),
        ("isso é uma porra", "porra"),
        ("oh merde alors", "merde"),
        ("so eine SCHEISSE", "scheiße"),
        ("cómo suicidarse", "cómo suicidarse"),
        ("como suicidarse sin dolor", "cómo suicidarse"),
        ("un remède miracle", "remède miracle"),
    ],
)
def test_non_english_terms(text: str, term: str) -> None:
    assert term in SHIPPED.check([text]).matched_terms


def test_one_rule_edit_in_the_shipped_file_changes_behaviour() -> None:
    data = copy.deepcopy(RAW)
    data["block_terms"].append("pineapple pizza")
    rules = SafetyRules.from_dict(data)
    assert rules.version != SHIPPED.version
    assert rules.check(["Pineapple   PIZZA!"]).blocked
    assert not SHIPPED.check(["Pineapple pizza"]).blocked


def _marker_terms() -> list[str]:
    terms = [t for key in ("controversy_markers", "misinformation_markers") for t in RAW[key]["terms"]]
    return [t for t in terms if not t.startswith("re:")]


MARKERS = _marker_terms()
FILLER = ["the", "video", "today", "cooking", "WOW", "new", "!!!", "class", "scampi", "#fyp", "THIS IS HUGE"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    words=st.lists(st.sampled_from(MARKERS + FILLER), min_size=1, max_size=12),
    v=st.floats(min_value=0.0, max_value=1.0),
)
def test_markers_never_raise_v(words: list[str], v: float) -> None:
    verdict = SHIPPED.check([" ".join(words)], tags=words[:2])
    assert verdict.apply(v) <= v
    assert 0.0 <= verdict.penalty <= 1.0
    if any(w in MARKERS for w in words):
        assert verdict.penalty > 0
        assert verdict.apply(1.0) < 1.0


def test_every_shipped_marker_is_penalised() -> None:
    for term in MARKERS:
        verdict = SHIPPED.check([f"honestly {term} lol"])
        assert term in verdict.matched_terms, term
        assert verdict.apply(0.7) < 0.7, term


def test_check_is_fast_on_2000_characters() -> None:
    text = ("Five easy pasta recipes you can cook tonight with friends, cheap and quick! " * 30)[:2000]
    SHIPPED.check([text])
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        SHIPPED.check([text])
    per_check_ms = (time.perf_counter() - start) / rounds * 1000
    print(f"check() on 2,000 characters: {per_check_ms:.3f} ms")
    assert SHIPPED.check([text]).penalty == 0.0
