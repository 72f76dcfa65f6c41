"""The local evaluator: image measurements, transcript features and engagement, blended.

Dimensions (weighted means of component scores in [0, 1]; a component that cannot be measured -
no keyframes, no transcript, no metrics, a single keyframe for motion - counts as neutral 0.5, so
missing evidence pulls a score towards the middle instead of towards an extreme):

* ``visual_quality`` = 0.30 sharpness + 0.25 exposure + 0.15 colourfulness + 0.15 resolution
  + 0.15 motion (per-frame scores averaged over the keyframes; motion between consecutive ones).
  No keyframes: 0.5.
* ``content_value`` = 0.40 semantic value (MiniLM similarity to valuable vs low-value anchor
  utterances) + 0.15 lexical diversity (MATTR) + 0.15 originality (few repeated trigrams)
  + 0.30 engagement (comments and likes per viewer-minute, retention).
* ``host_performance`` = 0.30 audience interaction (questions, greetings, direct address)
  + 0.15 engaging-with-viewers similarity + 0.15 fluency (few fillers) + 0.15 speech rate (words
  per stream minute) + 0.25 chat response (comments per viewer-minute).
* ``overall_rating`` = 0.35 content_value + 0.25 visual_quality + 0.25 host_performance
  + 0.15 engagement.

See :mod:`.images`, :mod:`.text` and :mod:`.engagement` for each measurement and its reference points.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from creatormesh.allocation.evaluation.engagement import EngagementFeatures
from creatormesh.allocation.evaluation.images import FrameMeasurements, measure_frame, motion_difference, motion_score
from creatormesh.allocation.evaluation.model import (
    DEFAULT_LIMITS,
    LOCAL,
    Evaluation,
    Limits,
    Reason,
    StreamInput,
    decode_keyframes,
)
from creatormesh.allocation.evaluation.scoring import NEUTRAL, blend
from creatormesh.allocation.evaluation.text import TranscriptAnalyzer, TranscriptFeatures
from creatormesh.common.embeddings import TextEmbedder, default_embedder

VERSION = "local-1"
"""Version of the local feature set and weights (bump when either changes)."""

VISUAL_WEIGHTS = {"sharpness": 0.30, "exposure": 0.25, "colourfulness": 0.15, "resolution": 0.15, "motion": 0.15}
CONTENT_WEIGHTS = {"semantic value": 0.40, "lexical diversity": 0.15, "originality": 0.15, "engagement": 0.30}
HOST_WEIGHTS = {
    "audience interaction": 0.30,
    "engaging talk": 0.15,
    "fluency": 0.15,
    "speech rate": 0.15,
    "chat response": 0.25,
}
OVERALL_WEIGHTS = {"content_value": 0.35, "visual_quality": 0.25, "host_performance": 0.25, "engagement": 0.15}
MAX_REASON_PARTS = 3


@dataclass(frozen=True)
class Part:
    """One component of a dimension: its score, and what was measured (None = not measurable, neutral)."""

    name: str
    score: float
    detail: str | None


def combine(weights: Mapping[str, float], parts: Sequence[Part]) -> float:
    return blend([(weights[p.name], p.score) for p in parts])


def explain(weights: Mapping[str, float], parts: Sequence[Part], score: float) -> str:
    """A reason such as ``0.81: sharpness 0.95 (...); exposure 0.90 (...)`` naming the components that
    moved the score most away from neutral, then the ones that could not be measured."""
    measured = sorted(
        (p for p in parts if p.detail is not None), key=lambda p: -weights[p.name] * abs(p.score - NEUTRAL)
    )
    said = [f"{p.name} {p.score:.2f} ({p.detail})" for p in measured[:MAX_REASON_PARTS]]
    missing = [p.name for p in parts if p.detail is None]
    if missing:
        said.append("neutral 0.5 for " + ", ".join(missing))
    return f"{score:.2f}: " + "; ".join(said)


def _visual_parts(frames: Sequence[FrameMeasurements], measurements: dict[str, float]) -> list[Part]:
    n = len(frames)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values)

    sharp = mean([f.sharpness_score for f in frames])
    lap = mean([f.laplacian_variance for f in frames])
    exposure = mean([f.exposure_score for f in frames])
    luminance = mean([f.mean_luminance for f in frames])
    clipped = mean([f.clipped_fraction for f in frames])
    colour = mean([f.colourfulness_score for f in frames])
    hasler = mean([f.colourfulness for f in frames])
    resolution = mean([f.resolution_score for f in frames])
    short_side = min(min(f.width, f.height) for f in frames)
    measurements.update(
        keyframes=float(n),
        sharpness=sharp,
        laplacian_variance=lap,
        exposure=exposure,
        mean_luminance=luminance,
        clipped_fraction=clipped,
        colourfulness=colour,
        colourfulness_hasler=hasler,
        resolution=resolution,
        min_short_side_px=float(short_side),
    )
    over = f", mean of {n} frames" if n > 1 else ""
    parts = [
        Part("sharpness", sharp, f"Laplacian variance {lap:.0f}{over}"),
        Part("exposure", exposure, f"mean luminance {luminance:.2f}, {clipped:.0%} clipped"),
        Part("colourfulness", colour, f"Hasler-Suesstrunk M {hasler:.0f}"),
        Part("resolution", resolution, f"shortest side {short_side} px"),
    ]
    if n >= 2:
        diffs = [motion_difference(a.thumbnail, b.thumbnail) for a, b in itertools.pairwise(frames)]
        mad = mean(diffs)
        measurements.update(motion=motion_score(mad), motion_mean_abs_diff=mad)
        parts.append(Part("motion", motion_score(mad), f"mean abs. difference {mad:.3f} between consecutive frames"))
    else:
        measurements["motion"] = NEUTRAL
        parts.append(Part("motion", NEUTRAL, None))
    return parts


def _transcript_measurements(t: TranscriptFeatures, measurements: dict[str, float]) -> None:
    measurements.update(
        transcript_words=float(t.words),
        transcript_chunks_embedded=float(t.chunks_embedded),
        semantic_value=t.semantic_value_score,
        value_similarity=t.value_similarity,
        low_value_similarity=t.low_value_similarity,
        semantic_margin=t.semantic_margin,
        engaging_margin=t.engaging_margin,
        lexical_diversity=t.lexical_diversity_score,
        mattr=t.mattr,
        originality=t.originality_score,
        repeated_trigram_fraction=t.repeated_trigrams,
        audience_interaction=t.interaction_score,
        questions_per_100_words=t.questions_per_100_words,
        greetings_per_100_words=t.greetings_per_100_words,
        address_per_100_words=t.address_per_100_words,
        fluency=t.fluency_score,
        fillers_per_100_words=t.fillers_per_100_words,
    )
    if t.words_per_minute is not None:
        measurements["words_per_minute"] = t.words_per_minute
        measurements["speech_rate"] = t.speech_rate_score or 0.0


def _engagement_measurements(e: EngagementFeatures, measurements: dict[str, float]) -> None:
    measurements.update(
        engagement=e.score, comment_rate=e.comment_score, like_rate=e.like_score, retention_score=e.retention_score
    )
    if e.comments_per_viewer_minute is not None:
        measurements["comments_per_viewer_minute"] = e.comments_per_viewer_minute
    if e.likes_per_viewer_minute is not None:
        measurements["likes_per_viewer_minute"] = e.likes_per_viewer_minute
    if e.retention is not None:
        measurements["retention"] = e.retention


def _engagement_detail(e: EngagementFeatures) -> str | None:
    if not e.available:
        return None
    said = []
    if e.comments_per_viewer_minute is not None and e.likes_per_viewer_minute is not None:
        said.append(
            f"{e.comments_per_viewer_minute * 100:.2g} comments and {e.likes_per_viewer_minute * 100:.2g} likes "
            "per 100 viewer-minutes"
        )
    if e.retention is not None:
        said.append(f"average/peak viewers {e.retention:.2f}")
    return ", ".join(said)


class LocalEvaluator:
    """Evaluates a stream on this machine (see the module docstring for the model).

    ``embedder`` is shared and loaded once; None uses :func:`~.embedder.default_embedder` (loaded on first use).
    :meth:`evaluate_sync` validates the stream with ``limits`` (the same rules as
    :func:`~.model.validate_stream`) and is CPU-bound: :meth:`evaluate` runs it in a worker thread.
    """

    version = VERSION

    def __init__(self, embedder: TextEmbedder | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._embedder = embedder
        self._analyzer: TranscriptAnalyzer | None = None
        self._lock = threading.Lock()

    @property
    def analyzer(self) -> TranscriptAnalyzer:
        with self._lock:
            if self._analyzer is None:
                if self._embedder is None:
                    self._embedder = default_embedder()
                self._analyzer = TranscriptAnalyzer(self._embedder)
            return self._analyzer

    async def evaluate(self, stream: StreamInput) -> Evaluation:
        return await asyncio.to_thread(self.evaluate_sync, stream)

    def evaluate_sync(self, stream: StreamInput) -> Evaluation:
        images = decode_keyframes(stream, self.limits)
        try:
            frames = [measure_frame(image) for image in images]
        finally:
            for image in images:
                image.close()
        transcript = (
            self.analyzer.analyse(stream.transcript, stream.metrics.duration_minutes)
            if stream.transcript.strip()
            else None
        )
        return self.combine(stream.stream_id, frames, transcript, EngagementFeatures.of(stream.metrics))

    def combine(
        self,
        stream_id: str,
        frames: Sequence[FrameMeasurements],
        transcript: TranscriptFeatures | None,
        engagement: EngagementFeatures,
    ) -> Evaluation:
        """Blend the measurements into the four dimensions with reasons (weights in the module docstring)."""
        m: dict[str, float] = {}
        reasons: list[Reason] = []

        if frames:
            visual_parts = _visual_parts(frames, m)
            visual = combine(VISUAL_WEIGHTS, visual_parts)
            reasons.append(Reason("visual_quality", explain(VISUAL_WEIGHTS, visual_parts, visual)))
        else:
            visual = NEUTRAL
            m["keyframes"] = 0.0
            reasons.append(Reason("visual_quality", "no keyframes: nothing to measure, neutral 0.5"))

        _engagement_measurements(engagement, m)
        engagement_detail = _engagement_detail(engagement)
        chat_detail = (
            f"{engagement.comments_per_viewer_minute * 100:.2g} comments per 100 viewer-minutes"
            if engagement.comments_per_viewer_minute is not None
            else None
        )
        if transcript is not None:
            _transcript_measurements(transcript, m)
            t = transcript
            rate = t.speech_rate_score
            content_parts = [
                Part(
                    "semantic value",
                    t.semantic_value_score,
                    f"closest to {t.closest_value_class if t.semantic_margin >= 0 else t.closest_low_value_class} "
                    f"anchors, value-vs-low-value similarity margin {t.semantic_margin:+.2f}",
                ),
                Part("lexical diversity", t.lexical_diversity_score, f"MATTR {t.mattr:.2f}"),
                Part("originality", t.originality_score, f"{t.repeated_trigrams:.0%} repeated word trigrams"),
            ]
            host_parts = [
                Part(
                    "audience interaction",
                    t.interaction_score,
                    f"{t.questions_per_100_words:.1f} questions, {t.greetings_per_100_words:.1f} greetings/thanks, "
                    f"{t.address_per_100_words:.1f} direct addresses per 100 words",
                ),
                Part("engaging talk", t.engaging_score, f"engaging-with-viewers margin {t.engaging_margin:+.2f}"),
                Part("fluency", t.fluency_score, f"{t.fillers_per_100_words:.1f} fillers per 100 words"),
                Part(
                    "speech rate",
                    NEUTRAL if rate is None else rate,
                    None if t.words_per_minute is None else f"{t.words_per_minute:.3g} words per stream minute",
                ),
            ]
        else:
            content_parts = [Part(n, NEUTRAL, None) for n in ("semantic value", "lexical diversity", "originality")]
            host_parts = [
                Part(n, NEUTRAL, None) for n in ("audience interaction", "engaging talk", "fluency", "speech rate")
            ]
            reasons.append(Reason("", "empty transcript: transcript features are neutral 0.5"))
        if not engagement.available:
            reasons.append(Reason("", "no basic metrics (duration and viewers): engagement is neutral 0.5"))
        content_parts.append(Part("engagement", engagement.score, engagement_detail))
        host_parts.append(Part("chat response", engagement.comment_score, chat_detail))

        content = combine(CONTENT_WEIGHTS, content_parts)
        host = combine(HOST_WEIGHTS, host_parts)
        reasons.append(Reason("content_value", explain(CONTENT_WEIGHTS, content_parts, content)))
        reasons.append(Reason("host_performance", explain(HOST_WEIGHTS, host_parts, host)))
        overall_parts = (
            (OVERALL_WEIGHTS["content_value"], content),
            (OVERALL_WEIGHTS["visual_quality"], visual),
            (OVERALL_WEIGHTS["host_performance"], host),
            (OVERALL_WEIGHTS["engagement"], engagement.score),
        )
        overall = blend(overall_parts)
        reasons.append(
            Reason(
                "overall_rating",
                f"{overall:.2f}: 0.35 x content {content:.2f} + 0.25 x visual {visual:.2f} "
                f"+ 0.25 x host {host:.2f} + 0.15 x engagement {engagement.score:.2f}",
            )
        )
        return Evaluation(
            stream_id=stream_id,
            content_value=content,
            visual_quality=visual,
            host_performance=host,
            overall_rating=overall,
            reasons=tuple(reasons),
            evaluator=LOCAL,
            version=VERSION,
            measurements=MappingProxyType(m),
        )
