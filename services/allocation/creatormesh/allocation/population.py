"""A simulated creator population for the fairness report, the demo, the DPO dataset
and the benchmark: reproducible by seed, internally consistent, valid for
:func:`creatormesh.allocation.signals.validate`.

Segments (drawn independently per creator):

- newcomers, ~15 %: 0–5 months on the platform, small audiences (lognormal, median
  ~2,000 followers), quality anywhere from poor to good, short history;
- niche, ~12 %: established (>= 6 months), high quality (0.78–0.97) and a small
  audience (median ~4,000 followers, always < 20,000), rare categories over-represented;
- mainstream, the rest: tenure 6–150 months (median ~2 years), heavy-tailed audience
  (lognormal, median ~20,000 followers, top 1 % in the millions), average quality.

Regions (ISO codes) and ~10 categories have deliberately unequal sizes. Audience
fields are consistent: ``avg_viewers <= peak_viewers <= viewer_count``, comments and
likes follow viewers × engagement. :func:`is_newcomer` and :func:`is_niche` classify
any signals (not just simulated ones) the way the report counts them.
"""

from __future__ import annotations

import numpy as np

from creatormesh.allocation.pool import paused_gc
from creatormesh.allocation.signals import MAX_COUNT, CreatorSignals

#: Regions and their population shares (unequal on purpose).
REGIONS: dict[str, float] = {
    "US": 0.28,
    "BR": 0.15,
    "IN": 0.14,
    "ID": 0.10,
    "MX": 0.08,
    "DE": 0.07,
    "JP": 0.06,
    "NG": 0.05,
    "PH": 0.04,
    "KE": 0.03,
}
#: Content categories and their shares among non-niche creators.
CATEGORIES: dict[str, float] = {
    "gaming": 0.22,
    "music": 0.16,
    "beauty": 0.12,
    "lifestyle": 0.11,
    "sports": 0.09,
    "cooking": 0.08,
    "comedy": 0.07,
    "education": 0.06,
    "travel": 0.05,
    "crafts": 0.04,
}
#: Niche creators lean towards the rarer categories.
NICHE_CATEGORIES: dict[str, float] = {
    "education": 0.22,
    "crafts": 0.18,
    "travel": 0.14,
    "cooking": 0.12,
    "music": 0.10,
    "lifestyle": 0.08,
    "comedy": 0.06,
    "beauty": 0.04,
    "sports": 0.03,
    "gaming": 0.03,
}
NEWCOMER_SHARE = 0.15
NICHE_SHARE = 0.12

#: Classification thresholds (:func:`is_newcomer`, :func:`is_niche`).
NEWCOMER_MONTHS = 6
NICHE_MAX_FOLLOWERS = 20_000
NICHE_MIN_QUALITY = 0.75


def quality(s: CreatorSignals) -> float:
    """Plain mean of the four quality inputs."""
    return (s.content_value + s.visual_quality + s.host_performance + s.overall_rating) / 4


def is_newcomer(s: CreatorSignals) -> bool:
    """Under 6 months on the platform."""
    return s.creator_experience_months < NEWCOMER_MONTHS


def is_niche(s: CreatorSignals) -> bool:
    """An established creator (not a newcomer) with high quality (mean of the four quality
    inputs >= 0.75) and a small audience (< 20,000 followers)."""
    return not is_newcomer(s) and s.follower_count < NICHE_MAX_FOLLOWERS and quality(s) >= NICHE_MIN_QUALITY


def _choice(rng: np.random.Generator, table: dict[str, float], n: int) -> list[str]:
    names = list(table)
    p = np.array([table[k] for k in names])
    return [names[i] for i in rng.choice(len(names), size=n, p=p / p.sum())]


def _beta(rng: np.random.Generator, mean: np.ndarray, strength: float) -> np.ndarray:
    m = np.clip(mean, 0.02, 0.98)
    return np.asarray(rng.beta(m * strength, (1 - m) * strength))


def simulate(n: int, seed: int) -> list[tuple[str, CreatorSignals]]:
    """``n`` simulated creators ``(creator_id, signals)``, the same for the same seed."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    segment = rng.choice(3, size=n, p=[NEWCOMER_SHARE, NICHE_SHARE, 1 - NEWCOMER_SHARE - NICHE_SHARE])
    newcomer, niche = segment == 0, segment == 1

    # tenure
    months = np.clip(np.round(rng.lognormal(np.log(24), 0.8, n)), 6, 150)
    months = np.where(newcomer, rng.integers(0, NEWCOMER_MONTHS, n), months)
    months = np.where(niche, np.clip(np.round(rng.lognormal(np.log(20), 0.7, n)), 6, 120), months)

    # audience: heavy-tailed followers
    followers = rng.lognormal(np.log(20_000), 1.8, n)
    followers = np.where(newcomer, rng.lognormal(np.log(2_000), 1.3, n), followers)
    followers = np.where(niche, np.minimum(rng.lognormal(np.log(4_000), 0.7, n), NICHE_MAX_FOLLOWERS - 1), followers)
    followers = np.clip(np.round(followers), 0, MAX_COUNT)

    # quality: a latent talent with per-field noise; bigger creators slightly better on average
    audience_bonus = 0.03 * (np.log10(np.maximum(followers, 1)) - 4)
    talent = np.clip(rng.normal(0.58, 0.14, n) + audience_bonus, 0.05, 0.95)
    talent = np.where(newcomer, rng.uniform(0.25, 0.85, n), talent)
    talent = np.where(niche, rng.uniform(0.80, 0.95, n), talent)
    noise = 0.06

    def field(center: np.ndarray) -> np.ndarray:
        values = np.clip(center + rng.normal(0, noise, n), 0, 1)
        return np.where(niche, np.clip(values, 0.78, 0.97), values)

    content_value, visual_quality, host_performance, overall_rating = (field(talent) for _ in range(4))

    # engagement: rates rise with quality; niche audiences are more engaged
    engagement = np.clip(_beta(rng, 0.03 + 0.12 * talent + 0.04 * niche, 20), 0, 0.6)
    retention = _beta(rng, 0.2 + 0.55 * talent, 12)
    chat = _beta(rng, 0.15 + 0.5 * talent + 0.1 * niche, 10)

    # viewers of the period, concurrent average and peak (avg <= peak <= viewers)
    viewers = np.round(followers * rng.lognormal(np.log(0.3), 0.6, n) + rng.integers(0, 50, n))
    avg = np.floor(viewers * np.clip(rng.lognormal(np.log(0.12), 0.5, n), 0.01, 0.8))
    peak_ratio = 1.0 + rng.lognormal(np.log(0.6), 0.7, n)
    peak = np.minimum(np.round(avg * peak_ratio), viewers)
    avg = np.minimum(avg, peak)
    viewers, avg, peak = (np.clip(v, 0, MAX_COUNT) for v in (viewers, avg, peak))
    comments = np.clip(np.round(viewers * engagement * rng.lognormal(np.log(3), 0.5, n)), 0, MAX_COUNT)
    likes = np.clip(np.round(viewers * engagement * rng.lognormal(np.log(10), 0.5, n)), 0, MAX_COUNT)
    duration = np.round(np.clip(rng.lognormal(np.log(90), 0.6, n), 10, 720), 1)

    # track record
    history = _beta(rng, 0.15 + 0.6 * talent + 0.1 * np.minimum(months, 48) / 48, 12)
    history = np.where(newcomer, _beta(rng, 0.2 + 0.4 * talent, 8), history)
    consistency = _beta(rng, 0.35 + 0.4 * np.minimum(months, 60) / 60, 8)

    regions = _choice(rng, REGIONS, n)
    categories = _choice(rng, CATEGORIES, n)
    niche_categories = _choice(rng, NICHE_CATEGORIES, n)

    width = max(5, len(str(max(n - 1, 0))))

    def r3(a: np.ndarray) -> list[float]:
        return list(np.round(a, 3).tolist())

    cols = {
        "creator_experience_months": months.astype(int).tolist(),
        "follower_count": followers.astype(np.int64).tolist(),
        "historical_performance": r3(history),
        "consistency_score": r3(consistency),
        "content_value": r3(content_value),
        "visual_quality": r3(visual_quality),
        "host_performance": r3(host_performance),
        "overall_rating": r3(overall_rating),
        "viewer_count": viewers.astype(np.int64).tolist(),
        "engagement_rate": r3(engagement),
        "retention_rate": r3(retention),
        "chat_activity": r3(chat),
        "live_duration_minutes": duration.tolist(),
        "peak_viewers": peak.astype(np.int64).tolist(),
        "avg_viewers": avg.astype(np.int64).tolist(),
        "comment_count": comments.astype(np.int64).tolist(),
        "like_count": likes.astype(np.int64).tolist(),
    }
    niche_list = niche.tolist()
    out: list[tuple[str, CreatorSignals]] = []
    with paused_gc():
        for i in range(n):
            signals = CreatorSignals(
                **{name: values[i] for name, values in cols.items()},
                region=regions[i],
                content_category=niche_categories[i] if niche_list[i] else categories[i],
            )
            out.append((f"creator-{seed}-{i:0{width}d}", signals))
    return out
