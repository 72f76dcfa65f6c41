"""Engagement features from the seed's ``basic_metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from creatormesh.allocation.evaluation.model import BasicMetrics
from creatormesh.allocation.evaluation.scoring import NEUTRAL, blend, log_ramp, ramp

COMMENTS_ZERO_AT, COMMENTS_ONE_AT = 0.001, 0.1  # comments per viewer-minute
LIKES_ZERO_AT, LIKES_ONE_AT = 0.002, 0.3  # likes per viewer-minute
RETENTION_ZERO_AT, RETENTION_ONE_AT = 0.2, 0.9  # average / peak viewers
WEIGHTS = {"comments": 0.4, "likes": 0.3, "retention": 0.3}


@dataclass(frozen=True)
class EngagementFeatures:
    """Rates normalised by audience size and length, so a small stream is not penalised for being small.

    ``viewer_minutes = average_viewers x duration_minutes``. A rate is None when it cannot be computed
    (no duration or no viewers; retention needs peak_viewers > 0) and then scores neutral 0.5.
    """

    comments_per_viewer_minute: float | None
    likes_per_viewer_minute: float | None
    retention: float | None

    @classmethod
    def of(cls, m: BasicMetrics) -> EngagementFeatures:
        viewer_minutes = m.average_viewers * m.duration_minutes
        return cls(
            comments_per_viewer_minute=m.total_comments / viewer_minutes if viewer_minutes > 0 else None,
            likes_per_viewer_minute=m.total_likes / viewer_minutes if viewer_minutes > 0 else None,
            retention=m.average_viewers / m.peak_viewers if m.peak_viewers > 0 else None,
        )

    @property
    def available(self) -> bool:
        return any(v is not None for v in (self.comments_per_viewer_minute, self.retention))

    @property
    def comment_score(self) -> float:
        """Comments per viewer-minute on a log scale: 0 at <= 0.001, 1 at >= 0.1 (one comment per viewer
        every 10 minutes). The seed example (3200 comments, 1200 viewers, 90 min) is 0.030 -> 0.74."""
        v = self.comments_per_viewer_minute
        return NEUTRAL if v is None else log_ramp(v, COMMENTS_ZERO_AT, COMMENTS_ONE_AT)

    @property
    def like_score(self) -> float:
        """Likes per viewer-minute on a log scale: 0 at <= 0.002, 1 at >= 0.3 (seed example: 0.079 -> 0.73)."""
        v = self.likes_per_viewer_minute
        return NEUTRAL if v is None else log_ramp(v, LIKES_ZERO_AT, LIKES_ONE_AT)

    @property
    def retention_score(self) -> float:
        """Average / peak viewers: 0 at <= 0.2 (a spike that left), 1 at >= 0.9 (seed example: 0.8 -> 0.86)."""
        v = self.retention
        return NEUTRAL if v is None else ramp(v, RETENTION_ZERO_AT, RETENTION_ONE_AT)

    @property
    def score(self) -> float:
        """0.4 x comments + 0.3 x likes + 0.3 x retention."""
        return blend(
            (
                (WEIGHTS["comments"], self.comment_score),
                (WEIGHTS["likes"], self.like_score),
                (WEIGHTS["retention"], self.retention_score),
            )
        )
