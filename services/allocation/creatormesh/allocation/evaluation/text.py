"""Transcript features: semantic similarity to anchor utterances (MiniLM embeddings) and lexical
measurements (diversity, repetition, audience interaction, fillers, speech rate).

Semantic anchors are short *example utterances* in the register of live speech rather than
descriptions of it: MiniLM compares like with like, and "Today I'm going to teach you..." is
close to a teaching stream, while the sentence "the host teaches" is not much closer to it
than to anything else. The transcript is cut into chunks of at most :data:`CHUNK_WORDS` words at
sentence ends, at most :data:`MAX_CHUNKS` chunks spread evenly over the transcript are embedded,
and each chunk is compared with every anchor (cosine similarity); a class scores the best match
among its anchors.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from creatormesh.allocation.evaluation.scoring import blend, piecewise, ramp
from creatormesh.common.embeddings import TextEmbedder

VALUE_ANCHORS: Mapping[str, tuple[str, ...]] = {
    "educational": (
        "Today I'm going to teach you how to do this step by step.",
        "Let me explain how this works and why it matters.",
        "Here's a tip: first measure it, then cut it, and check the result.",
    ),
    "informative": (
        "Here are the latest facts and figures, and what they mean for you.",
        "According to the report, prices rose three percent this year.",
        "Let's review the key points and analyse the details.",
    ),
    "entertaining": (
        "Haha that was hilarious, let me tell you a funny story.",
        "This next song is one of my favourites, let's have some fun.",
        "What a play! That was an amazing round, let's go!",
    ),
    "engaging with viewers": (
        "Hi everyone, welcome to the stream, thanks for joining!",
        "Great question from the chat, let me answer that.",
        "What do you all think? Let me know in the comments.",
    ),
}
"""Example utterances of valuable live content, by class."""
LOW_VALUE_ANCHORS: Mapping[str, tuple[str, ...]] = {
    "spam": (
        "Buy now, click the link in my bio, use my discount code.",
        "Follow me follow me follow me, like and subscribe, giveaway.",
        "Send gifts now, don't miss this deal, link in bio.",
    ),
    "silence or filler": ("um uh um uh hmm", "...", "uh yeah um so uh"),
    "repetition": ("yeah yeah yeah okay okay okay", "the the the the the", "same same same same again again"),
}
"""Example utterances of low-value live content, by class."""
ENGAGING_CLASS = "engaging with viewers"

CHUNK_WORDS = 30
MAX_CHUNKS = 16
MATTR_WINDOW = 50

# Reference points (raw value -> score).
SEMANTIC_MARGIN_ZERO_AT, SEMANTIC_MARGIN_ONE_AT = -0.20, 0.20
MATTR_ZERO_AT, MATTR_ONE_AT = 0.30, 0.72
REPETITION_ZERO_AT, REPETITION_ONE_AT = 0.50, 0.05
QUESTIONS_ONE_AT = 2.0  # per 100 words
GREETINGS_ONE_AT = 0.5  # per 100 words
ADDRESS_ONE_AT = 4.0  # per 100 words
FILLERS_ZERO_AT, FILLERS_ONE_AT = 8.0, 0.5  # per 100 words
SPEECH_RATE_POINTS = ((0.0, 0.0), (30.0, 0.2), (80.0, 0.7), (110.0, 1.0), (180.0, 1.0), (250.0, 0.6), (350.0, 0.2))

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_INTERROGATIVE = re.compile(
    r"^(what|how|why|who|whom|whose|where|when|which|do|does|did|can|could|would|will|should|shall|is|are|was"
    r"|were|have|has|anyone|anybody)\b",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"\b(hello|hi|hey|hiya|welcome|good (morning|afternoon|evening|night)|thanks|thank you|shout ?outs?|"
    r"bye|see you)\b",
    re.IGNORECASE,
)
_ADDRESS = frozenset({"you", "your", "you're", "yours", "y'all", "chat", "everyone", "everybody", "guys", "folks"})
_FILLERS = frozenset({"um", "uh", "umm", "uhm", "uhh", "er", "erm", "hmm", "mm", "ah"})


def words_of(text: str) -> list[str]:
    """Lower-cased word tokens (letters/digits, inner apostrophes kept)."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def sentences_of(text: str) -> list[str]:
    """Sentences split at ``. ! ? …`` followed by white space, and at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def chunks_of(text: str, max_words: int = CHUNK_WORDS) -> list[str]:
    """Consecutive sentences grouped into chunks of at most ``max_words`` words (longer sentences,
    e.g. unpunctuated speech-to-text output, are cut every ``max_words`` words)."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in sentences_of(text):
        tokens = sentence.split()
        if current and len(current) + len(tokens) > max_words:
            chunks.append(" ".join(current))
            current = []
        while len(tokens) > max_words:
            chunks.append(" ".join(tokens[:max_words]))
            tokens = tokens[max_words:]
        current.extend(tokens)
    if current:
        chunks.append(" ".join(current))
    return chunks


def spread(items: Sequence[str], k: int) -> list[str]:
    """At most ``k`` items spread evenly over ``items`` (all of them when there are few)."""
    if len(items) <= k:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, k).round()]


def mattr(words: Sequence[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type-token ratio (Covington & McFall 2010): the mean share of distinct words in
    every window of ``window`` words; the plain type-token ratio for shorter texts. Unlike the plain
    ratio it does not fall with text length."""
    if not words:
        return 0.0
    if len(words) <= window:
        return len(set(words)) / len(words)
    counts = Counter(words[:window])
    total = len(counts)
    for i in range(window, len(words)):
        counts[words[i]] += 1
        old = words[i - window]
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        total += len(counts)
    return total / (len(words) - window + 1) / window


def repeated_trigram_fraction(words: Sequence[str]) -> float:
    """Share of word trigrams that already occurred earlier in the transcript (0 = no repetition)."""
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    if not trigrams:
        return 0.0
    return 1.0 - len(set(trigrams)) / len(trigrams)


def count_questions(sentences: Sequence[str]) -> int:
    """Sentences ending with "?"; when the transcript has no "?" at all (unpunctuated speech-to-text),
    sentences that open with an interrogative word ("what", "how", "do", "anyone", ...)."""
    marked = sum(1 for s in sentences if s.endswith("?"))
    if marked or any("?" in s for s in sentences):
        return marked
    return sum(1 for s in sentences if _INTERROGATIVE.match(s))


@dataclass(frozen=True)
class Anchors:
    """Embedded anchor utterances (rows) and the class of each row."""

    vectors: NDArray[np.float32]
    classes: tuple[str, ...]

    @classmethod
    def build(cls, embedder: TextEmbedder) -> Anchors:
        texts: list[str] = []
        classes: list[str] = []
        for table in (VALUE_ANCHORS, LOW_VALUE_ANCHORS):
            for name, examples in table.items():
                texts.extend(examples)
                classes.extend([name] * len(examples))
        return cls(embedder.embed(texts), tuple(classes))

    def class_similarity(self, chunks: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
        """Per class, each chunk's best cosine similarity among the class's anchors."""
        sims = chunks @ self.vectors.T
        names = np.asarray(self.classes)
        return {name: sims[:, names == name].max(axis=1) for name in dict.fromkeys(self.classes)}


@dataclass(frozen=True)
class TranscriptFeatures:
    """Measurements of a non-empty transcript; the ``*_score`` properties map them to [0, 1]."""

    words: int
    chunks_embedded: int
    value_similarity: float
    """Mean over chunks of the best similarity to a valuable-content class."""
    low_value_similarity: float
    """Mean over chunks of the best similarity to a low-value class."""
    engaging_margin: float
    """Mean over chunks of (similarity to "engaging with viewers") - (best low-value similarity)."""
    closest_value_class: str
    closest_low_value_class: str
    mattr: float
    repeated_trigrams: float
    questions_per_100_words: float
    greetings_per_100_words: float
    address_per_100_words: float
    fillers_per_100_words: float
    words_per_minute: float | None
    """None when the stream duration is unknown (0)."""

    @property
    def semantic_margin(self) -> float:
        return self.value_similarity - self.low_value_similarity

    @property
    def semantic_value_score(self) -> float:
        """Semantic margin (value - low-value similarity): 0 at <= -0.20, 1 at >= +0.20. Measured with
        MiniLM: teaching, news, music and gaming talk lands at about +0.1..+0.3, link-in-bio spam,
        filler and word repetition at -0.25..-0.6."""
        return ramp(self.semantic_margin, SEMANTIC_MARGIN_ZERO_AT, SEMANTIC_MARGIN_ONE_AT)

    @property
    def lexical_diversity_score(self) -> float:
        """MATTR (window 50): 0 at <= 0.30 (a handful of words on repeat), 1 at >= 0.72 (ordinary speech)."""
        return ramp(self.mattr, MATTR_ZERO_AT, MATTR_ONE_AT)

    @property
    def originality_score(self) -> float:
        """Repeated word trigrams: 1 at <= 5 %, 0 at >= 50 % (the same lines over and over)."""
        return ramp(self.repeated_trigrams, REPETITION_ZERO_AT, REPETITION_ONE_AT)

    @property
    def interaction_score(self) -> float:
        """Talking to the audience: 0.4 x questions (0 -> 0, >= 2 per 100 words -> 1) + 0.3 x greetings
        and thanks (>= 0.5 per 100 words -> 1) + 0.3 x direct address ("you", "chat", "everyone"...,
        >= 4 per 100 words -> 1)."""
        return blend(
            (
                (0.4, ramp(self.questions_per_100_words, 0.0, QUESTIONS_ONE_AT)),
                (0.3, ramp(self.greetings_per_100_words, 0.0, GREETINGS_ONE_AT)),
                (0.3, ramp(self.address_per_100_words, 0.0, ADDRESS_ONE_AT)),
            )
        )

    @property
    def engaging_score(self) -> float:
        """Engaging margin: 0 at <= -0.20, 1 at >= +0.20 (same scale as the semantic margin)."""
        return ramp(self.engaging_margin, SEMANTIC_MARGIN_ZERO_AT, SEMANTIC_MARGIN_ONE_AT)

    @property
    def fluency_score(self) -> float:
        """Filler words (um, uh, er, hmm...): 1 at <= 0.5 per 100 words, 0 at >= 8."""
        return ramp(self.fillers_per_100_words, FILLERS_ZERO_AT, FILLERS_ONE_AT)

    @property
    def speech_rate_score(self) -> float | None:
        """Transcript words per stream minute: 0 when silent, 0.7 at 80, 1 in 110..180 (lively
        conversational speech), 0.6 at 250, 0.2 at >= 350 (gabbling, or a transcript longer than the
        stream). None when the duration is unknown."""
        if self.words_per_minute is None:
            return None
        return piecewise(self.words_per_minute, SPEECH_RATE_POINTS)


class TranscriptAnalyzer:
    """Computes :class:`TranscriptFeatures` with a shared embedder; anchors are embedded once."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder
        self._anchors: Anchors | None = None
        self._lock = threading.Lock()

    @property
    def anchors(self) -> Anchors:
        with self._lock:
            if self._anchors is None:
                self._anchors = Anchors.build(self.embedder)
            return self._anchors

    def analyse(self, transcript: str, duration_minutes: float) -> TranscriptFeatures | None:
        """Features of ``transcript``; None when it has no words."""
        words = words_of(transcript)
        if not words:
            return None
        n = len(words)
        per100 = 100.0 / n
        sentences = sentences_of(transcript)
        chunks = spread(chunks_of(transcript), MAX_CHUNKS)
        by_class = self.anchors.class_similarity(self.embedder.embed(chunks))
        value = np.max([by_class[c] for c in VALUE_ANCHORS], axis=0)
        low = np.max([by_class[c] for c in LOW_VALUE_ANCHORS], axis=0)
        return TranscriptFeatures(
            words=n,
            chunks_embedded=len(chunks),
            value_similarity=float(value.mean()),
            low_value_similarity=float(low.mean()),
            engaging_margin=float((by_class[ENGAGING_CLASS] - low).mean()),
            closest_value_class=max(VALUE_ANCHORS, key=lambda c: float(by_class[c].mean())),
            closest_low_value_class=max(LOW_VALUE_ANCHORS, key=lambda c: float(by_class[c].mean())),
            mattr=mattr(words),
            repeated_trigrams=repeated_trigram_fraction(words),
            questions_per_100_words=count_questions(sentences) * per100,
            greetings_per_100_words=len(_GREETING.findall(transcript)) * per100,
            address_per_100_words=sum(1 for w in words if w in _ADDRESS) * per100,
            fillers_per_100_words=sum(1 for w in words if w in _FILLERS) * per100,
            words_per_minute=n / duration_minutes if duration_minutes > 0 else None,
        )
