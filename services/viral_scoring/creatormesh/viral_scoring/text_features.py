"""Hand-made text features: length, sentiment and arousal, and the hook of the first sentence.

Sentiment comes from VADER (a rule-based lexicon, `vaderSentiment`); arousal is approximated from intensity
cues (|compound|, exclamations, capitals, intensifiers, emoji). The MiniLM sentence embedding is computed apart
(features.py), because it is the expensive part and the light model does without it.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

TEXT_STAT_NAMES = (
    "title_chars",
    "title_words",
    "title_caps_ratio",
    "title_exclaims",
    "title_question",
    "title_has_number",
    "title_second_person",
    "tag_count",
    "description_chars",
    "transcript_words",
    "valence",
    "positive",
    "negative",
    "arousal",
    "hook_words",
    "hook_question",
    "hook_number_or_list",
    "hook_cta",
    "hook_curiosity",
    "hook_valence_abs",
    "emoji_count",
    "has_category",
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
_SECOND = {"you", "your", "you're", "youre", "yourself", "u"}
_CTA = {"watch", "subscribe", "try", "join", "wait", "look", "listen", "stop", "comment", "share", "follow", "click"}
_CURIOSITY = {"how", "why", "what", "this", "secret", "finally", "first", "never", "ever", "best", "worst", "top"}
_INTENSIFIERS = {"so", "very", "really", "insane", "crazy", "amazing", "omg", "wow", "epic", "huge", "incredible"}


@functools.cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def first_sentence(text: str) -> str:
    text = text.strip()
    return _SENTENCE.split(text, maxsplit=1)[0] if text else ""


def _caps_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def text_stats(
    title: str, description: str, tags: tuple[str, ...], transcript: str, category_id: int | None
) -> np.ndarray:
    """The TEXT_STAT_NAMES vector, each roughly in [0, 1]."""
    title_words = _WORD.findall(title.lower())
    body = transcript or description
    polarity = _vader().polarity_scores(f"{title}. {body[:500]}")
    hook = first_sentence(transcript) or title
    hook_words = _WORD.findall(hook.lower())
    hook_polarity = _vader().polarity_scores(hook)["compound"] if hook else 0.0
    exclaims = title.count("!") + body[:500].count("!")
    intensifiers = sum(w in _INTENSIFIERS for w in _WORD.findall(f"{title} {body[:500]}".lower()))
    emoji = len(_EMOJI.findall(title)) + len(_EMOJI.findall(body[:500]))
    caps = _caps_ratio(title)
    arousal = min(1.0, 0.5 * abs(polarity["compound"]) + 0.1 * exclaims + 0.3 * caps + 0.1 * intensifiers)
    values = [
        min(len(title), 200) / 200,
        min(len(title_words), 30) / 30,
        caps,
        min(title.count("!"), 5) / 5,
        float("?" in title),
        float(bool(_NUMBER.search(title))),
        float(any(w in _SECOND for w in title_words)),
        math.log1p(len(tags)) / math.log(101),
        math.log1p(len(description)) / math.log(10_001),
        math.log1p(len(_WORD.findall(transcript))) / math.log(10_001),
        (polarity["compound"] + 1) / 2,
        polarity["pos"],
        polarity["neg"],
        arousal,
        min(len(hook_words), 30) / 30,
        float("?" in hook),
        float(bool(hook_words) and (hook_words[0].isdigit() or bool(_NUMBER.search(hook[:12])))),
        float(any(w in _CTA for w in hook_words[:6])),
        float(any(w in _CURIOSITY for w in hook_words[:4])),
        abs(hook_polarity),
        min(emoji, 5) / 5,
        float(category_id is not None),
    ]
    return np.asarray(values, dtype=np.float32)
