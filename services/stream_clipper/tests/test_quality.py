"""quality: window matching, and the three scorer variants on a real generated VOD."""

from __future__ import annotations

import pytest

from creatormesh.stream_clipper.keywords import KeywordRules
from creatormesh.stream_clipper.quality import VARIANTS, Quality, evaluate, format_table, keyphrases, match
from creatormesh.stream_clipper.vodgen import LabelledVod, make_vod


def test_match_empty_and_exact() -> None:
    assert match([], []) == (0, 0)
    assert match([], [(1.0, 2.0)]) == (0, 0)
    assert match([(1.0, 2.0)], []) == (0, 0)
    assert match([(10.0, 20.0)], [(10.0, 20.0)]) == (1, 1)


def test_match_overlap_threshold_either_way() -> None:
    assert match([(15.0, 25.0)], [(10.0, 20.0)]) == (1, 1)  # exactly half of both
    assert match([(16.0, 26.0)], [(10.0, 20.0)]) == (0, 0)  # 40 %
    assert match([(0.0, 30.0)], [(10.0, 18.0)]) == (1, 1)  # the window covers all of a short label
    assert match([(12.0, 14.0)], [(0.0, 30.0)]) == (1, 1)  # the label covers all of a short window
    assert match([(16.0, 26.0)], [(10.0, 20.0)], min_overlap=0.4) == (1, 1)


def test_match_touching_and_zero_length_do_not_count() -> None:
    assert match([(20.0, 30.0)], [(10.0, 20.0)]) == (0, 0)
    assert match([(15.0, 15.0)], [(10.0, 20.0)]) == (0, 0)


def test_match_each_label_once() -> None:
    assert match([(10.0, 18.0), (12.0, 20.0)], [(10.0, 20.0)]) == (1, 1)  # the duplicate is a false positive
    assert match([(0.0, 40.0)], [(5.0, 15.0), (25.0, 35.0)]) == (1, 2)  # one window recalls two labels


def test_match_finds_the_best_assignment() -> None:
    # greedy in time order would give the first window label 0 and leave the second without a label
    found = [(0.0, 30.0), (8.0, 18.0)]
    labelled = [(10.0, 18.0), (20.0, 28.0)]
    assert match(found, labelled) == (2, 2)


def test_match_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        match([(2.0, 1.0)], [(0.0, 3.0)])
    with pytest.raises(ValueError):
        match([(0.0, 1.0)], [(0.0, 1.0)], min_overlap=0.0)


def test_format_table() -> None:
    table = format_table([Quality("rms-only", 4, 4, 0.5, 0.5, 0.5, 1.25)])
    lines = table.splitlines()
    assert lines[0].startswith("| variant |") and len(lines) == 3
    assert lines[2] == "| rms-only | 4 | 4 | 0.50 | 0.50 | 0.50 | 1.2 |"


def test_keyphrases_are_plain_english() -> None:
    phrases = keyphrases(KeywordRules.load())
    assert {"lets go", "oh my god", "insane", "headshot"} <= set(phrases)
    assert all(p.replace(" ", "").isalpha() and p.islower() for p in phrases)
    assert "increíble" not in phrases and len(phrases) == len(set(phrases))


@pytest.fixture(scope="session")
def short_vod(tmp_path_factory: pytest.TempPathFactory) -> LabelledVod:
    """80 s, 2 highlights, 1 music decoy, 320x180."""
    out = tmp_path_factory.mktemp("quality") / "vod.mp4"
    return make_vod(out, seconds=80.0, highlights=2, decoys=1, seed=11, size=(320, 180))


def test_evaluate_three_variants(short_vod: LabelledVod) -> None:
    # Keyword spotting keeps this fast; full PocketSphinx decoding runs at ~2x real time on this machine.
    from creatormesh.stream_clipper.stt import build_engine

    engine = build_engine("pocketsphinx", keyphrases=keyphrases(KeywordRules.load()))
    rows = evaluate([short_vod], engine=engine)
    assert [r.variant for r in rows] == list(VARIANTS)
    for r in rows:
        assert r.labelled == 2 and 1 <= r.found <= 2
        assert 0.0 <= r.precision <= 1.0 and 0.0 <= r.recall <= 1.0 and 0.0 <= r.f1 <= 1.0
        assert r.seconds >= 0.0
    rms_only = rows[0]
    assert rms_only.recall >= 0.5
    assert rows[1].seconds > rms_only.seconds  # transcription is the expensive part
    assert format_table(rows).count("\n") == 4
