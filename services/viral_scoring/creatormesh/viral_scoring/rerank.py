"""Generation-time reranking (seed, Entry Point C): order candidates by log P_LM(c) + eta * V(c)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from creatormesh.viral_scoring.scorer import Score


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str
    log_prob: float  # natural log, <= 0
    token_count: int | None = None
    finish_reason: str = ""


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: Score
    combined: float
    rank: int  # 1-based


def combined_score(c: Candidate, v: float, eta: float, normalize_by_length: bool) -> float:
    log_p = c.log_prob / c.token_count if normalize_by_length and c.token_count else c.log_prob
    return log_p + eta * v


def rerank(
    candidates: Sequence[Candidate], scores: Sequence[Score], eta: float, normalize_by_length: bool = False
) -> list[Ranked]:
    """Best first by log P (+ length normalisation) + eta * V; blocked candidates after every unblocked one;
    ties keep the input order."""
    keyed = [
        (s.safety.blocked, -combined_score(c, s.v, eta, normalize_by_length), i)
        for i, (c, s) in enumerate(zip(candidates, scores, strict=True))
    ]
    order = sorted(range(len(keyed)), key=lambda i: keyed[i])
    return [Ranked(candidates[i], scores[i], -keyed[i][1], rank) for rank, i in enumerate(order, start=1)]
