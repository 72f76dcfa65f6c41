"""gRPC adapter: StreamClipperService proto <-> the clipper's records and use cases, nothing else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.protobuf.timestamp_pb2 import Timestamp

from creatormesh.common.errors import NotFound, require
from creatormesh.common.paging import next_token, page
from creatormesh.stream_clipper import records as r
from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb
from creatormesh.stream_clipper.v1 import stream_clipper_pb2_grpc

if TYPE_CHECKING:
    from creatormesh.stream_clipper.app import StreamClipperService

_SLUG = re.compile(r"^[a-z0-9_-]{1,64}$")
STRATEGIES = {
    pb.PUBLISH_STRATEGY_UNSPECIFIED: "",
    pb.PUBLISH_STRATEGY_MULTIPART: "MULTIPART",
    pb.PUBLISH_STRATEGY_FILE_UPLOAD: "FILE_UPLOAD",
    pb.PUBLISH_STRATEGY_PULL_FROM_URL: "PULL_FROM_URL",
}
_STRATEGY_PB = {v: k for k, v in STRATEGIES.items() if v}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def options(msg: pb.ClipOptions | None, prefix: str = "options") -> r.Options:
    """Validated options with defaults filled in."""
    if msg is None:
        return r.Options()
    max_clips = msg.max_clips or 3
    require(1 <= max_clips <= 50, f"{prefix}.max_clips", "must be in 1..50 (0 = 3)")
    low = msg.min_duration_seconds if msg.HasField("min_duration_seconds") else 15.0
    high = msg.max_duration_seconds if msg.HasField("max_duration_seconds") else 60.0
    require(1.0 <= low <= 600.0, f"{prefix}.min_duration_seconds", "must be in 1..600")
    require(low <= high <= 600.0, f"{prefix}.max_duration_seconds", "must be >= min_duration_seconds and <= 600")
    require(
        msg.language == "" or re.fullmatch(r"[a-z]{2}", msg.language) is not None,
        f"{prefix}.language",
        "must be an ISO 639-1 code such as 'en' (or empty)",
    )
    require(len(msg.chat_log_uri) <= 2048, f"{prefix}.chat_log_uri", "must be at most 2048 characters")
    return r.Options(
        max_clips=max_clips, min_duration_s=low, max_duration_s=high, language=msg.language,
        chat_log_uri=msg.chat_log_uri, render=msg.render if msg.HasField("render") else True,
        publish=msg.publish if msg.HasField("publish") else False,
    )  # fmt: skip


def options_pb(o: r.Options) -> pb.ClipOptions:
    return pb.ClipOptions(
        max_clips=o.max_clips, min_duration_seconds=o.min_duration_s, max_duration_seconds=o.max_duration_s,
        language=o.language, chat_log_uri=o.chat_log_uri, render=o.render, publish=o.publish,
    )  # fmt: skip


def score_pb(s: Any) -> pb.ScoreParts:
    return pb.ScoreParts(
        energy=s.energy, keywords=s.keywords, scene=s.scene, chat=s.chat, total=s.total,
        matched_keywords=list(s.matched_keywords),
    )  # fmt: skip


def words_pb(words: Any) -> list[pb.Word]:
    return [pb.Word(text=w.text, start_seconds=w.start, end_seconds=w.end, confidence=w.confidence) for w in words]


def publish_pb(p: r.PublishInfo) -> pb.PublishInfo:
    return pb.PublishInfo(
        status=pb.PublishStatus.ValueType(p.status),
        strategy=_STRATEGY_PB.get(p.strategy, pb.PUBLISH_STRATEGY_UNSPECIFIED), publish_id=p.publish_id,
        post_url=p.post_url, error=p.error, attempts=p.attempts,
        next_attempt_at=_ts(p.next_attempt_at), published_at=_ts(p.published_at), sandbox=p.sandbox,
    )  # fmt: skip


def clip_pb(c: r.Clip) -> pb.Clip:
    msg = pb.Clip(
        clip_id=c.clip_id, job_id=c.job_id, stream_id=c.stream_id, streamer=c.streamer, start_seconds=c.start_s,
        end_seconds=c.end_s, duration_seconds=c.duration_s, transcript=c.transcript, words=words_pb(c.words),
        language=c.language, score=score_pb(c.score), source_media_uri=c.source_media_uri,
        rendered_media_uri=c.rendered_media_uri, thumbnail_uri=c.thumbnail_uri,
        status=pb.ClipStatus.ValueType(c.status), error=c.error,
        publish=publish_pb(c.publish), created_at=_ts(c.created_at), updated_at=_ts(c.updated_at),
    )  # fmt: skip
    if c.viral_score is not None:
        msg.viral_score = c.viral_score
    return msg


def job_pb(j: r.Job) -> pb.Job:
    return pb.Job(
        job_id=j.job_id, request_id=j.request_id, source_uri=j.source_uri, streamer=j.streamer,
        stream_id=j.stream_id, dry_run=j.dry_run, options=options_pb(j.options), stage=pb.Stage.ValueType(j.stage),
        fraction=j.fraction, message=j.message, error=j.error, clip_ids=j.clip_ids,
        source_duration_seconds=j.source_duration_s,
        stage_seconds={f"STAGE_{k}": v for k, v in j.stage_seconds.items()},
        created_at=_ts(j.created_at), updated_at=_ts(j.updated_at), finished_at=_ts(j.finished_at),
    )  # fmt: skip


def channel_pb(c: r.Channel) -> pb.MonitoredChannel:
    return pb.MonitoredChannel(
        channel_slug=c.slug, chunk_seconds=c.chunk_seconds, options=options_pb(c.options),
        state=pb.MonitorState.ValueType(c.state),
        stream_id=c.stream_id, chunks_recorded=c.chunks_recorded, clips_created=c.clips_created, error=c.error,
        started_at=_ts(c.started_at), last_checked_at=_ts(c.last_checked_at), last_live_at=_ts(c.last_live_at),
    )  # fmt: skip


def vod_request(req: pb.ProcessVodRequest) -> dict[str, Any]:
    require(1 <= len(req.request_id) <= 128, "request_id", "is required (1..128 characters)")
    require(req.source_uri.strip() != "", "source_uri", "is required")
    require(len(req.source_uri) <= 4096, "source_uri", "must be at most 4096 characters")
    require(1 <= len(req.streamer.strip()) <= 64, "streamer", "is required (1..64 characters)")
    require(len(req.stream_id) <= 128, "stream_id", "must be at most 128 characters")
    return {
        "request_id": req.request_id, "source_uri": req.source_uri.strip(), "streamer": req.streamer.strip(),
        "stream_id": req.stream_id, "dry_run": req.dry_run,
        "options": options(req.options if req.HasField("options") else None),
    }  # fmt: skip


def slug(value: str) -> str:
    lowered = value.strip().lower()
    require(_SLUG.fullmatch(lowered) is not None, "channel_slug", "is required: 1..64 of a-z, 0-9, '-' and '_'")
    return lowered


class StreamClipperServicer(stream_clipper_pb2_grpc.StreamClipperServiceServicer):
    def __init__(self, service: StreamClipperService) -> None:
        self.service = service

    async def ProcessVod(self, request: pb.ProcessVodRequest, context: Any) -> AsyncIterator[pb.ProcessVodResponse]:
        spec = vod_request(request)
        async for progress in self.service.process_vod(**spec):
            msg = pb.ProcessVodResponse(
                job_id=progress.job_id, stage=pb.Stage.ValueType(progress.stage), fraction=progress.fraction,
                message=progress.message, error=progress.error,
            )  # fmt: skip
            if progress.clip is not None:
                msg.clip.CopyFrom(clip_pb(progress.clip))
            yield msg

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.GetJobResponse:
        require(request.job_id.strip() != "", "job_id", "is required")
        job = await self.service.get_job(request.job_id)
        if job is None:
            raise NotFound("job", request.job_id)
        return pb.GetJobResponse(job=job_pb(job))

    async def ListClips(self, request: pb.ListClipsRequest, context: Any) -> pb.ListClipsResponse:
        filters = {"streamer": request.streamer, "stream_id": request.stream_id}
        offset, limit = page(request.page_size, request.page_token, 50, filters)
        clips = await self.service.list_clips(request.streamer, request.stream_id, offset, limit)
        return pb.ListClipsResponse(
            clips=[clip_pb(c) for c in clips], next_page_token=next_token(offset, limit, len(clips), filters)
        )

    async def GetClip(self, request: pb.GetClipRequest, context: Any) -> pb.GetClipResponse:
        require(request.clip_id.strip() != "", "clip_id", "is required")
        clip = await self.service.get_clip(request.clip_id)
        if clip is None:
            raise NotFound("clip", request.clip_id)
        return pb.GetClipResponse(clip=clip_pb(clip))

    async def PublishClip(self, request: pb.PublishClipRequest, context: Any) -> pb.PublishClipResponse:
        require(request.clip_id.strip() != "", "clip_id", "is required")
        require(0 <= request.max_wait_seconds <= 7200, "max_wait_seconds", "must be in 1..7200 (0 = 2400)")
        require(len(request.caption) <= 2200, "caption", "must be at most 2200 characters")
        require(request.strategy in STRATEGIES, "strategy", "is not a known PublishStrategy")
        clip, already = await self.service.publish_clip(
            request.clip_id,
            strategy=STRATEGIES[request.strategy],
            wait=request.wait_when_rate_limited,
            max_wait_s=float(request.max_wait_seconds or 2400),
            caption=request.caption,
            ignore_threshold=request.ignore_viral_threshold,
        )
        return pb.PublishClipResponse(clip_id=clip.clip_id, publish=publish_pb(clip.publish), already_published=already)

    async def StartMonitoring(self, request: pb.StartMonitoringRequest, context: Any) -> pb.StartMonitoringResponse:
        name = slug(request.channel_slug)
        chunk = request.chunk_seconds or 60
        require(10 <= chunk <= 600, "chunk_seconds", "must be in 10..600 (0 = 60)")
        opts = options(request.options if request.HasField("options") else None)
        channel, existed = await self.service.start_monitoring(name, chunk, opts)
        return pb.StartMonitoringResponse(channel=channel_pb(channel), already_monitored=existed)

    async def StopMonitoring(self, request: pb.StopMonitoringRequest, context: Any) -> pb.StopMonitoringResponse:
        name = slug(request.channel_slug)
        was = await self.service.stop_monitoring(name)
        return pb.StopMonitoringResponse(channel_slug=name, was_monitored=was)

    async def ListMonitoredChannels(
        self, request: pb.ListMonitoredChannelsRequest, context: Any
    ) -> pb.ListMonitoredChannelsResponse:
        offset, limit = page(request.page_size, request.page_token, 100, {})
        channels = await self.service.list_channels(offset, limit)
        return pb.ListMonitoredChannelsResponse(
            channels=[channel_pb(c) for c in channels], next_page_token=next_token(offset, limit, len(channels), {})
        )
