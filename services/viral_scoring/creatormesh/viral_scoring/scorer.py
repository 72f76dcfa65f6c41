"""Scoring use cases: light, full, int8-quantised and two-stage scoring, with safety on top (no transport)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from creatormesh.viral_scoring.checkpoint import Checkpoint
from creatormesh.viral_scoring.features import MODALITIES, Embed, FeatureBatch, embedding_text, featurize
from creatormesh.viral_scoring.items import Item
from creatormesh.viral_scoring.model import predict, quantize
from creatormesh.viral_scoring.safety import SafetyRules, SafetyVerdict
from creatormesh.viral_scoring.trends import TrendWindow
from creatormesh.viral_scoring.visual import KeyframeEncoder

LIGHT_MODALITIES = ("text", "behavioural", "temporal")


class Mode(StrEnum):
    TWO_STAGE = "two_stage"
    FULL = "full"
    LIGHT = "light"
    QUANTIZED = "quantized"


class Stage(StrEnum):
    LIGHT = "light"
    FULL = "full"
    QUANTIZED = "quantized"


@dataclass(frozen=True)
class Score:
    content_id: str
    v: float
    v_unpenalized: float
    subscores: tuple[float, float, float, float, float]  # E, H, R, S, T
    safety: SafetyVerdict
    model_version: str
    stage: Stage
    modalities: tuple[str, ...]


class Scorer:
    """Scores items with the checkpoint's models. Thread-safe for concurrent reads (models in eval mode)."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        rules: SafetyRules,
        embed: Embed,
        trends: TrendWindow | None = None,
        *,
        top_fraction: float = 0.25,
        media: bool = True,
        embed_int8: Embed | None = None,
        keyframe_encoder: KeyframeEncoder | None = None,
    ) -> None:
        """``embed_int8`` (an int8-quantised sentence encoder) serves QUANTIZED mode together with the int8
        model; without it QUANTIZED uses ``embed``."""
        self.checkpoint = checkpoint
        self.quantized = quantize(checkpoint.full)
        self.rules = rules
        self.embed = embed
        self.embed_int8 = embed_int8 or embed
        self.keyframe_encoder = keyframe_encoder
        self.trends = trends or TrendWindow()
        self.top_fraction = top_fraction
        self.media = media

    @property
    def version(self) -> str:
        return self.checkpoint.version

    def features(self, items: Sequence[Item], *, embed: Embed | None) -> FeatureBatch:
        return featurize(
            items, embed=embed, trends=self.trends.features, media=self.media, keyframe_encoder=self.keyframe_encoder
        )

    def score(
        self, items: Sequence[Item], mode: Mode = Mode.TWO_STAGE, top_fraction: float | None = None
    ) -> list[Score]:
        """One score per item, in order."""
        if not items:
            return []
        if mode == Mode.LIGHT:
            return self._scores(items, self.features(items, embed=None), Stage.LIGHT)
        if mode == Mode.FULL:
            return self._scores(items, self.features(items, embed=self.embed), Stage.FULL)
        if mode == Mode.QUANTIZED:
            return self._scores(items, self.features(items, embed=self.embed_int8), Stage.QUANTIZED)
        return self._two_stage(items, self.top_fraction if top_fraction is None else top_fraction)

    def _two_stage(self, items: Sequence[Item], fraction: float) -> list[Score]:
        """The light model scores everything without sentence embeddings; the top ceil(fraction * n) by light V
        get embedded and re-scored by the full model."""
        cheap = self.features(items, embed=None)
        light = self._scores(items, cheap, Stage.LIGHT)
        k = min(len(items), max(1, math.ceil(fraction * len(items))))
        top = np.argsort([-s.v_unpenalized for s in light], kind="stable")[:k]
        chosen = [items[i] for i in top]
        embedding = self.embed([embedding_text(it) for it in chosen])
        full_batch = replace(cheap.select(top), embedding=embedding)
        for i, s in zip(top, self._scores(chosen, full_batch, Stage.FULL), strict=True):
            light[int(i)] = s
        return light

    def _scores(self, items: Sequence[Item], batch: FeatureBatch, stage: Stage) -> list[Score]:
        model = {Stage.LIGHT: self.checkpoint.light, Stage.FULL: self.checkpoint.full}.get(stage, self.quantized)
        v, sub = predict(model, batch)
        return [self._one(item, float(v[i]), sub[i], batch.mask[i], stage) for i, item in enumerate(items)]

    def _one(self, item: Item, v: float, sub: NDArray[np.float32], mask: NDArray[np.bool_], stage: Stage) -> Score:
        verdict = self.rules.check([item.title, item.description, item.transcript], item.tags)
        used = tuple(m for m, present in zip(MODALITIES, mask, strict=True) if present)
        if stage == Stage.LIGHT:
            used = tuple(m for m in used if m in LIGHT_MODALITIES)
        e, h, r, s, t = (float(x) for x in sub)
        return Score(item.id, verdict.apply(v), v, (e, h, r, s, t), verdict, self.version, stage, used)
