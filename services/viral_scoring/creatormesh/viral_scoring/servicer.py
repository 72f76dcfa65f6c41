"""gRPC adapter: ViralScoringService proto <-> the scoring domain, nothing else."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creatormesh.common.errors import require
from creatormesh.viral_scoring.items import Behaviour, Item, Kind, Media, local_file
from creatormesh.viral_scoring.lm_client import GenerationParams
from creatormesh.viral_scoring.rerank import Candidate, Ranked
from creatormesh.viral_scoring.scorer import Mode, Score, Stage
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb
from creatormesh.viral_scoring.v1 import viral_scoring_pb2_grpc

if TYPE_CHECKING:
    from creatormesh.viral_scoring.app import ViralScoringService

MAX_BATCH = 1000
MAX_CANDIDATES = 256
MAX_KEYFRAMES = 32
KINDS = {
    pb.CONTENT_KIND_UNSPECIFIED: Kind.UNKNOWN,
    pb.CONTENT_KIND_VIDEO: Kind.VIDEO,
    pb.CONTENT_KIND_CLIP: Kind.CLIP,
    pb.CONTENT_KIND_SCRIPT: Kind.SCRIPT,
    pb.CONTENT_KIND_GENERATED_VIDEO: Kind.GENERATED_VIDEO,
}
MODES = {
    pb.SCORING_MODE_UNSPECIFIED: Mode.TWO_STAGE,
    pb.SCORING_MODE_TWO_STAGE: Mode.TWO_STAGE,
    pb.SCORING_MODE_FULL: Mode.FULL,
    pb.SCORING_MODE_LIGHT: Mode.LIGHT,
    pb.SCORING_MODE_QUANTIZED: Mode.QUANTIZED,
}
STAGES = {Stage.LIGHT: pb.STAGE_LIGHT, Stage.FULL: pb.STAGE_FULL, Stage.QUANTIZED: pb.STAGE_QUANTIZED}
MODALITIES = {
    "text": pb.MODALITY_TEXT,
    "visual": pb.MODALITY_VISUAL,
    "audio": pb.MODALITY_AUDIO,
    "behavioural": pb.MODALITY_BEHAVIOURAL,
    "temporal": pb.MODALITY_TEMPORAL,
}
_COUNTS = ("views", "likes", "dislikes", "comment_count", "shares", "replays")
_RATES = ("early_ctr", "watch_through")


def _length(value: str, field: str, limit: int) -> str:
    require(len(value) <= limit, field, f"must be at most {limit} characters, got {len(value)}")
    return value


def _local_path(uri: str, field: str) -> Path | None:
    """Media the service can read: a local path or file:// URI (remote media is not fetched by the scorer)."""
    if not uri:
        return None
    path = local_file(uri)
    require(path is not None, field, f"only local paths and file:// URIs are read, got {uri!r}")
    assert path is not None
    require(path.is_file(), field, f"no such file: {uri}")
    return path


def behaviour_of(b: pb.BehaviouralSignals, field: str) -> Behaviour:
    values: dict[str, Any] = {}
    for name in _COUNTS:
        if b.HasField(name):  # type: ignore[arg-type]
            require(getattr(b, name) >= 0, f"{field}.{name}", "must be >= 0")
            values[name] = int(getattr(b, name))
    for name in _RATES:
        if b.HasField(name):  # type: ignore[arg-type]
            x = getattr(b, name)
            require(math.isfinite(x) and 0 <= x <= 1, f"{field}.{name}", f"must be in [0, 1], got {x}")
            values[name] = float(x)
    if b.HasField("observed_after_hours"):
        x = b.observed_after_hours
        require(math.isfinite(x) and x >= 0, f"{field}.observed_after_hours", "must be >= 0")
        values["observed_after_hours"] = float(x)
    return Behaviour(**values)


def media_of(m: pb.MediaRefs, field: str) -> Media:
    require(len(m.keyframes) <= MAX_KEYFRAMES, f"{field}.keyframes", f"at most {MAX_KEYFRAMES} allowed")
    frames: list[bytes | Path] = []
    for i, image in enumerate(m.keyframes):
        f = f"{field}.keyframes[{i}]"
        require(image.timestamp_seconds >= 0, f"{f}.timestamp_seconds", "must be >= 0")
        which = image.WhichOneof("source")
        require(which is not None, f"{f}.source", "data or uri is required")
        if which == "data":
            require(0 < len(image.data) <= 8 << 20, f"{f}.data", "must be 1 byte..8 MiB")
            frames.append(bytes(image.data))
        else:
            path = _local_path(image.uri, f"{f}.uri")
            assert path is not None
            frames.append(path)
    duration = None
    if m.HasField("duration_seconds"):
        require(
            math.isfinite(m.duration_seconds) and m.duration_seconds >= 0, f"{field}.duration_seconds", "must be >= 0"
        )
        duration = m.duration_seconds
    return Media(
        video=_local_path(m.video_uri, f"{field}.video_uri"),
        audio=_local_path(m.audio_uri, f"{field}.audio_uri"),
        keyframes=tuple(frames),
        duration_seconds=duration,
    )


def item_of(c: pb.ContentItem, field: str, *, require_id: bool = True) -> Item:
    if require_id:
        require(c.id.strip() != "", f"{field}.id", "is required")
    _length(c.id, f"{field}.id", 256)
    require(c.kind in KINDS, f"{field}.kind", f"unknown content kind {c.kind}")
    require(len(c.tags) <= 100, f"{field}.tags", f"at most 100 allowed, got {len(c.tags)}")
    for i, tag in enumerate(c.tags):
        _length(tag, f"{field}.tags[{i}]", 100)
    if c.HasField("category_id"):
        require(c.category_id >= 0, f"{field}.category_id", "must be >= 0")
    published = None
    if c.HasField("publish_time"):
        published = datetime.fromtimestamp(c.publish_time.ToNanoseconds() / 1e9, tz=UTC)
    return Item(
        id=c.id,
        kind=KINDS[c.kind],
        title=_length(c.title, f"{field}.title", 1000),
        description=_length(c.description, f"{field}.description", 10_000),
        tags=tuple(t.strip().lstrip("#") for t in c.tags if t.strip()),
        transcript=_length(c.transcript, f"{field}.transcript", 100_000),
        creator_id=_length(c.creator_id, f"{field}.creator_id", 256),
        channel_title=_length(c.channel_title, f"{field}.channel_title", 256),
        category_id=c.category_id if c.HasField("category_id") else None,
        publish_time=published,
        region=_length(c.region, f"{field}.region", 8),
        language=_length(c.language, f"{field}.language", 35),
        media=media_of(c.media, f"{field}.media"),
        behaviour=behaviour_of(c.behaviour, f"{field}.behaviour"),
    )


def options_of(o: pb.ScoringOptions, field: str) -> tuple[Mode, float | None]:
    require(o.mode in MODES, f"{field}.mode", f"unknown scoring mode {o.mode}")
    fraction = None
    if o.HasField("top_fraction"):
        fraction = o.top_fraction
        require(math.isfinite(fraction) and 0 < fraction <= 1, f"{field}.top_fraction", "must be in (0, 1]")
    return MODES[o.mode], fraction


def score_pb(s: Score) -> pb.ViralScore:
    e, h, r, sh, t = s.subscores
    return pb.ViralScore(
        content_id=s.content_id,
        v=s.v,
        v_unpenalized=s.v_unpenalized,
        subscores=pb.Subscores(emotion_intensity=e, hook_strength=h, replicability=r, share_trigger=sh, trend_match=t),
        safety=pb.Safety(
            blocked=s.safety.blocked,
            penalty=s.safety.penalty,
            reasons=list(s.safety.reasons),
            matched_terms=list(s.safety.matched_terms),
        ),
        model_version=s.model_version,
        stage=STAGES[s.stage],
        modalities=[MODALITIES[m] for m in s.modalities],
    )


def candidates_of(req: pb.RerankCandidates, normalize: bool) -> list[Candidate]:
    n = len(req.candidates)
    require(1 <= n <= MAX_CANDIDATES, "candidates.candidates", f"1..{MAX_CANDIDATES} required, got {n}")
    out = []
    for i, c in enumerate(req.candidates):
        f = f"candidates.candidates[{i}]"
        require(c.text.strip() != "", f"{f}.text", "is required")
        _length(c.text, f"{f}.text", 100_000)
        require(math.isfinite(c.log_prob) and c.log_prob <= 0, f"{f}.log_prob", f"must be <= 0, got {c.log_prob}")
        if c.HasField("token_count"):
            require(c.token_count >= 1, f"{f}.token_count", "must be >= 1")
        elif normalize:
            require(False, f"{f}.token_count", "is required when normalize_by_length is set")
        out.append(Candidate(c.id or str(i), c.text, c.log_prob, c.token_count if c.HasField("token_count") else None))
    ids = [c.id for c in out]
    require(len(set(ids)) == len(ids), "candidates.candidates", "candidate ids must be unique")
    return out


def generation_of(g: pb.GenerationOptions) -> GenerationParams:
    f = "generation"
    require(g.prompt.strip() != "", f"{f}.prompt", "is required")
    _length(g.prompt, f"{f}.prompt", 20_000)
    n = g.n or 16
    require(1 <= n <= 64, f"{f}.n", f"must be in 1..64, got {g.n}")
    temperature = g.temperature if g.HasField("temperature") else 0.9
    require(math.isfinite(temperature) and 0 <= temperature <= 2, f"{f}.temperature", "must be in [0, 2]")
    max_tokens = g.max_tokens or 256
    require(1 <= max_tokens <= 4096, f"{f}.max_tokens", "must be in 1..4096")
    top_p = g.top_p if g.HasField("top_p") else 1.0
    require(math.isfinite(top_p) and 0 < top_p <= 1, f"{f}.top_p", "must be in (0, 1]")
    require(len(g.stop) <= 4, f"{f}.stop", "at most 4 stop sequences")
    return GenerationParams(
        prompt=g.prompt,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        model=g.model,
        top_p=top_p,
        stop=tuple(g.stop),
        seed=g.seed if g.HasField("seed") else None,
    )


def ranked_pb(r: Ranked) -> pb.RankedCandidate:
    c = r.candidate
    return pb.RankedCandidate(
        id=c.id,
        text=c.text,
        log_prob=c.log_prob,
        token_count=c.token_count or 0,
        score=score_pb(r.score),
        combined_score=r.combined,
        rank=r.rank,
        finish_reason=c.finish_reason,
    )


class ViralScoringServicer(viral_scoring_pb2_grpc.ViralScoringServiceServicer):
    def __init__(self, service: ViralScoringService) -> None:
        self.service = service

    async def Score(self, request: pb.ScoreRequest, context: Any) -> pb.ScoreResponse:
        require(request.HasField("item"), "item", "is required")
        item = item_of(request.item, "item")
        mode, fraction = options_of(request.options, "options")
        scores = await self.service.score([item], mode, fraction)
        return pb.ScoreResponse(score=score_pb(scores[0]))

    async def ScoreBatch(self, request: pb.ScoreBatchRequest, context: Any) -> pb.ScoreBatchResponse:
        n = len(request.items)
        require(1 <= n <= MAX_BATCH, "items", f"1..{MAX_BATCH} items required, got {n}")
        items = [item_of(c, f"items[{i}]") for i, c in enumerate(request.items)]
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            require(item.id not in seen, f"items[{i}].id", f"duplicate of items[{seen.get(item.id)}].id")
            seen[item.id] = i
        mode, fraction = options_of(request.options, "options")
        scores = await self.service.score(items, mode, fraction)
        return pb.ScoreBatchResponse(scores=[score_pb(s) for s in scores])

    async def Rerank(self, request: pb.RerankRequest, context: Any) -> pb.RerankResponse:
        which = request.WhichOneof("source")
        require(which is not None, "source", "candidates or generation is required")
        eta = request.eta if request.HasField("eta") else self.service.settings.default_eta
        require(math.isfinite(eta) and eta >= 0, "eta", f"must be >= 0, got {eta}")
        context_item = item_of(request.context, "context", require_id=False)
        mode, fraction = options_of(request.options, "options")
        if which == "candidates":
            candidates, lm_model = candidates_of(request.candidates, request.normalize_by_length), ""
        else:
            lm_model, candidates = await self.service.generate(generation_of(request.generation))
        ranked = await self.service.rerank(candidates, context_item, eta, request.normalize_by_length, mode, fraction)
        return pb.RerankResponse(
            candidates=[ranked_pb(r) for r in ranked],
            eta=eta,
            lm_model=lm_model,
            model_version=self.service.model_version,
        )

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: Any) -> pb.GetModelInfoResponse:
        return self.service.model_info()
