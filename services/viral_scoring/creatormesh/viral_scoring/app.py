"""The viral_scoring service on the kit: loads the models and safety rules, serves ViralScoringService, scores
content arriving on `clips.created` and `videos.generated` into `content.scored`, and turns `interactions` into
labels (retrain.requested after every N)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common import topics
from creatormesh.common.bus import Event, Handler
from creatormesh.common.embeddings import TextEmbedder
from creatormesh.common.errors import FailedPrecondition, Unavailable, require
from creatormesh.common.server import Runtime, Service, Servicer
from creatormesh.common.settings import load
from creatormesh.events.v1 import content_pb2, interactions_pb2, retrain_pb2
from creatormesh.viral_scoring import checkpoint
from creatormesh.viral_scoring.items import Item, Kind, Media, local_file
from creatormesh.viral_scoring.label_log import Label, LabelLog
from creatormesh.viral_scoring.lm_client import CompletionsClient, GenerationParams, LMEndpointError
from creatormesh.viral_scoring.model import parameter_count
from creatormesh.viral_scoring.rerank import Candidate, Ranked, rerank
from creatormesh.viral_scoring.safety import SafetyRules
from creatormesh.viral_scoring.scorer import Mode, Score, Scorer
from creatormesh.viral_scoring.servicer import MODALITIES, STAGES, ViralScoringServicer, score_pb
from creatormesh.viral_scoring.settings import ViralScoringSettings
from creatormesh.viral_scoring.trends import TrendWindow
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb
from creatormesh.viral_scoring.v1 import viral_scoring_pb2_grpc
from creatormesh.viral_scoring.visual import KeyframeEncoder

log = logging.getLogger("creatormesh.viral_scoring")
FULL_NAME = pb.DESCRIPTOR.services_by_name["ViralScoringService"].full_name
_TYPE_NAMES = {v: k.removeprefix("INTERACTION_TYPE_").lower() for k, v in interactions_pb2.InteractionType.items()}
MODEL_NAME = "viral_scoring.viral_model"


class ViralScoringService(Service):
    name = "viral_scoring"

    def __init__(self, runtime: Runtime, settings: ViralScoringSettings | None = None) -> None:
        super().__init__(runtime)
        self.settings = settings or load(ViralScoringSettings)
        self.scorer: Scorer
        self.labels: LabelLog
        self.lm: CompletionsClient | None = None

    def servicers(self) -> Sequence[Servicer]:
        return [
            Servicer(
                viral_scoring_pb2_grpc.add_ViralScoringServiceServicer_to_server, ViralScoringServicer(self), FULL_NAME
            )
        ]

    @property
    def model_version(self) -> str:
        return self.scorer.version

    async def load(self) -> None:
        s = self.settings
        ckpt = await asyncio.to_thread(checkpoint.load, Path(s.model_path))
        embedder = await asyncio.to_thread(TextEmbedder, s.embedder_path or None, threads=s.torch_threads)
        rules = SafetyRules.load(Path(s.safety_rules_path) if s.safety_rules_path else None)
        encoder = None
        if s.keyframe_encoder_path:
            encoder = await asyncio.to_thread(KeyframeEncoder.load, Path(s.keyframe_encoder_path))
        self.scorer = Scorer(
            ckpt,
            rules,
            embedder.embed,
            TrendWindow(s.trend_window_hours * 3600),
            top_fraction=s.top_fraction,
            media=s.media_features,
            embed_int8=embedder.int8().embed,
            keyframe_encoder=encoder,
        )
        self.labels = LabelLog(self.runtime.redis(), s.redis_prefix)
        if s.lm_base_url:
            self.lm = CompletionsClient(s.lm_base_url, s.lm_model, timeout=s.lm_timeout_seconds, api_key=s.lm_api_key)
        warm = Item("warm-up", Kind.SCRIPT, title="warm up", transcript="Wait for it. This is how it starts.")
        for mode in Mode:  # SERVING means every model has run once
            await self.score([warm], mode)
        log.info("viral_scoring loaded: model %s, safety rules %s", ckpt.version, rules.version)

    async def close(self) -> None:
        if self.lm is not None:
            await self.lm.aclose()

    # --- use cases called by the servicer ------------------------------------
    async def score(self, items: Sequence[Item], mode: Mode, top_fraction: float | None = None) -> list[Score]:
        if not hasattr(self, "scorer"):
            raise FailedPrecondition("the viral models are not loaded yet")
        return await asyncio.to_thread(self.scorer.score, items, mode, top_fraction)

    async def generate(self, params: GenerationParams) -> tuple[str, list[Candidate]]:
        if self.lm is None:
            raise FailedPrecondition("no LM endpoint is configured (CREATORMESH_VIRAL_SCORING_LM_BASE_URL)")
        try:
            model, generated = await self.lm.generate(params)
        except LMEndpointError as exc:
            raise Unavailable(f"LM endpoint: {exc}") from exc
        return model, [
            Candidate(str(i), g.text, g.log_prob, g.token_count, g.finish_reason) for i, g in enumerate(generated)
        ]

    async def rerank(
        self,
        candidates: Sequence[Candidate],
        context: Item,
        eta: float,
        normalize: bool,
        mode: Mode,
        top_fraction: float | None,
    ) -> list[Ranked]:
        """Each candidate is scored as a SCRIPT item whose transcript is its text, with the context's metadata."""
        items = [
            Item(
                id=c.id,
                kind=Kind.SCRIPT,
                title=context.title,
                description=context.description,
                tags=context.tags,
                transcript=c.text,
                creator_id=context.creator_id,
                channel_title=context.channel_title,
                category_id=context.category_id,
                publish_time=context.publish_time,
                region=context.region,
                language=context.language,
            )
            for c in candidates
        ]
        scores = await self.score(items, mode, top_fraction)
        return rerank(candidates, scores, eta, normalize)

    def model_info(self) -> pb.GetModelInfoResponse:
        if not hasattr(self, "scorer"):
            raise FailedPrecondition("the viral models are not loaded yet")
        ckpt = self.scorer.checkpoint
        meta = ckpt.metadata
        trained = Timestamp()
        trained.FromDatetime(datetime.fromisoformat(meta["trained_at"]))
        evaluations = [
            pb.EvaluationMetrics(
                name=setting,
                mse=rows["full model"]["mse"],
                spearman=rows["full model"]["spearman"],
                samples=rows["full model"]["samples"],
            )
            for setting, rows in meta["evaluation"]["settings"].items()
        ]
        variants = [
            (STAGES[stage], model)
            for stage, model in zip(STAGES, (ckpt.light, ckpt.full, self.scorer.quantized), strict=True)
        ]
        return pb.GetModelInfoResponse(
            model_version=ckpt.version,
            coefficients=pb.Coefficients(**meta["coefficients"]),
            training=pb.TrainingMetrics(
                dataset=Path(meta["dataset"]).name,
                train_samples=meta["train_samples"],
                test_samples=meta["test_samples"],
                trained_at=trained,
                evaluations=evaluations,
                final_loss=meta["fit"]["full"]["final_loss"],
            ),
            variants=[
                pb.ModelVariant(stage=stage, version=ckpt.version, parameter_count=parameter_count(model), loaded=True)
                for stage, model in variants
            ],
            modalities=list(MODALITIES.values()),
            safety_rules_version=self.scorer.rules.version,
            default_eta=self.settings.default_eta,
        )

    # --- events ----------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {
            topics.CLIPS_CREATED: self.on_clip,
            topics.VIDEOS_GENERATED: self.on_video,
            topics.INTERACTIONS: self.on_interaction,
        }

    async def on_clip(self, event: Event) -> None:
        p = event.payload
        require(p.clip_id.strip() != "", "clip_id", "is required")
        require(p.end_seconds > p.start_seconds >= 0, "end_seconds", "must be > start_seconds >= 0")
        media_uri = p.rendered_media_uri or p.source_media_uri
        published = p.created_at.ToDatetime(tzinfo=UTC) if p.HasField("created_at") else None
        item = Item(
            id=p.clip_id, kind=Kind.CLIP, title=_title(p.transcript), transcript=p.transcript,
            tags=tuple(p.score.matched_keywords) if p.HasField("score") else (), creator_id=p.streamer,
            channel_title=p.streamer, publish_time=published, language=p.language,
            media=_media(media_uri, p.thumbnail_uri, p.duration_seconds),
        )  # fmt: skip
        await self._score_and_publish(item, media_uri, ["video"] if media_uri else [])

    async def on_video(self, event: Event) -> None:
        p = event.payload
        require(p.candidate_id.strip() != "", "candidate_id", "is required")
        published = p.generated_at.ToDatetime(tzinfo=UTC) if p.HasField("generated_at") else None
        item = Item(
            id=p.candidate_id, kind=Kind.GENERATED_VIDEO, title=p.original_prompt[:200], transcript=p.prompt,
            creator_id=p.user_id, publish_time=published, media=_media(p.video_url, "", p.duration_seconds),
        )  # fmt: skip
        await self._score_and_publish(item, p.video_url, ["video"])

    async def _score_and_publish(self, item: Item, media_uri: str, media_types: list[str]) -> None:
        bus = self.runtime.bus
        assert bus is not None
        (score,) = await self.score([item], Mode.FULL)
        self.scorer.trends.add(item.creator_id, item.tags)
        scored = score_pb(score)
        payload = content_pb2.ContentScored(
            content_id=item.id, kind=pb.ContentKind.Value(f"CONTENT_KIND_{item.kind.name}"),
            creator_id=item.creator_id, v=score.v, v_unpenalized=score.v_unpenalized,
            subscores=scored.subscores, safety=scored.safety, model_version=score.model_version,
            stage=STAGES[score.stage], modalities=[MODALITIES[m] for m in score.modalities], title=item.title,
            description=(item.transcript or item.description)[:2000],
            hashtags=[t.lower().lstrip("#") for t in item.tags], quality_score=score.v, media_types=media_types,
            media_uri=media_uri, duration_seconds=item.media.duration_seconds or 0.0, language=item.language,
        )  # fmt: skip
        if item.publish_time is not None:
            payload.published_at.FromDatetime(item.publish_time)
        # one event per (content, model version): a redelivered input re-publishes a duplicate consumers skip
        await bus.publish(
            topics.CONTENT_SCORED, payload, subject=item.id, event_id=f"scored:{item.id}:{score.model_version}"
        )

    async def on_interaction(self, event: Event) -> None:
        p = event.payload
        require(p.user_id.strip() != "", "user_id", "is required")
        require(p.item_id.strip() != "", "item_id", "is required")
        require(
            p.type in _TYPE_NAMES and p.type != interactions_pb2.INTERACTION_TYPE_UNSPECIFIED, "type", "is required"
        )
        require(0 <= p.watch_fraction <= 1, "watch_fraction", "must be in [0, 1]")
        occurred = p.occurred_at.ToNanoseconds() / 1e9 if p.HasField("occurred_at") else time.time()
        label = Label(
            event.event_id, p.user_id, p.item_id, p.creator_id, _TYPE_NAMES[p.type], p.watch_fraction, occurred,
            p.experiment, p.arm,
        )  # fmt: skip
        count = await self.labels.record(label)
        every = self.settings.retrain_after_labels
        if count % every == 0:
            await self._request_retrain(count, every)

    async def _request_retrain(self, count: int, every: int) -> None:
        bus = self.runtime.bus
        assert bus is not None
        request = retrain_pb2.RetrainRequested(
            model=MODEL_NAME, reason=f"{every} new engagement labels since the last request ({count} in all)",
            sample_count=every, trigger=retrain_pb2.RETRAIN_TRIGGER_SAMPLE_THRESHOLD, base_version=self.model_version,
            threshold=every, dataset_uri=f"redis-stream:{self.labels.stream}",
        )  # fmt: skip
        request.requested_at.GetCurrentTime()
        await bus.publish(
            topics.RETRAIN_REQUESTED, request, subject=MODEL_NAME, event_id=f"retrain:{MODEL_NAME}:{count}"
        )
        log.info("retrain.requested for %s after %d labels", MODEL_NAME, count)


def _title(transcript: str) -> str:
    words = transcript.split()
    return " ".join(words[:12])


def _media(uri: str, thumbnail: str, duration: float) -> Media:
    """Local media only (a path or file://); remote URIs are left to the text and time features."""
    video, thumb = local_file(uri), local_file(thumbnail)
    return Media(
        video=video if video is not None and video.is_file() else None,
        keyframes=(thumb,) if thumb is not None and thumb.is_file() else (),
        duration_seconds=duration or None,
    )
