"""Publishing clips to TikTok: the viral-score threshold, one upload per clip, and the publish state kept on the
clip. The TikTok protocol itself is in `tiktok` and `publisher`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from creatormesh.common.errors import FailedPrecondition, NotFound
from creatormesh.common.storage import Storage, fetch_local
from creatormesh.stream_clipper.publisher import Publisher, PublishOutcome, RedisPublisherState
from creatormesh.stream_clipper.records import Clip, ClipStatus, PublishInfo, PublishStatus
from creatormesh.stream_clipper.store import ClipStore
from creatormesh.stream_clipper.tiktok import TikTokClient
from creatormesh.stream_clipper.tokens import RedisTokenStore, Token

if TYPE_CHECKING:
    from creatormesh.stream_clipper.settings import StreamClipperSettings

log = logging.getLogger("creatormesh.stream_clipper.publishing")
BUSY = {PublishStatus.UPLOADING, PublishStatus.PROCESSING, PublishStatus.PUBLISHED}
TOKEN_NAME = "tiktok:user"


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def caption_for(template: str, clip: Clip) -> str:
    keywords = " ".join(f"#{k.replace(' ', '')}" for k in clip.score.matched_keywords[:5])
    text = template.format(streamer=clip.streamer, transcript=clip.transcript[:150], keywords=keywords)
    return text[:2200]


def outcome_info(outcome: PublishOutcome, strategy: str) -> PublishInfo:
    return PublishInfo(
        status=PublishStatus[outcome.status], strategy=strategy, publish_id=outcome.publish_id,
        post_url=outcome.post_url, error=outcome.error, attempts=outcome.attempts,
        next_attempt_at=_dt(outcome.next_attempt_at), published_at=_dt(outcome.published_at),
        sandbox=outcome.sandbox,
    )  # fmt: skip


class ClipPublisher:
    """Publishes rendered clips through a TikTok `Publisher` (None when TikTok is not configured)."""

    def __init__(
        self, settings: StreamClipperSettings, store: ClipStore, storage: Storage, redis_url: str, work_dir: Path
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.work_dir = work_dir
        self.wanted: set[str] = set()
        self._http = httpx.AsyncClient(timeout=120.0)
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[tuple[Clip, bool]]] = set()
        self.tokens = RedisTokenStore(redis_url, prefix=f"{settings.redis_prefix}:token:")
        self.publisher: Publisher | None = None
        if settings.tiktok_client_key:
            client = TikTokClient(
                self._http, self.tokens, client_key=settings.tiktok_client_key,
                client_secret=settings.tiktok_client_secret, api_url=settings.tiktok_api_url, token_name=TOKEN_NAME,
            )  # fmt: skip
            state = RedisPublisherState(redis_url, prefix=f"{settings.redis_prefix}:tiktok:")
            self.publisher = Publisher(
                client, state, privacy_level=settings.tiktok_privacy_level, poll_interval_s=settings.tiktok_poll_seconds
            )

    async def bootstrap_token(self) -> None:
        """Seed the token store with the configured refresh token when it holds no TikTok token yet."""
        if self.settings.tiktok_refresh_token and await self.tokens.load(TOKEN_NAME) is None:
            await self.tokens.save(
                TOKEN_NAME, Token(access_token="", expires_at=0.0, refresh_token=self.settings.tiktok_refresh_token)
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def publish(
        self,
        clip_id: str,
        *,
        strategy: str = "",
        wait: bool = False,
        max_wait_s: float = 2400.0,
        caption: str = "",
        ignore_threshold: bool = False,
    ) -> tuple[Clip, bool]:
        """Publish one clip; (clip, True) when it was already published or in progress."""
        clip = await asyncio.to_thread(self.store.get_clip, clip_id)
        if clip is None:
            raise NotFound("clip", clip_id)
        if clip.status != ClipStatus.RENDERED:
            raise FailedPrecondition(f"clip {clip_id} is {clip.status.name}, not RENDERED: nothing to publish")
        if clip.publish.status in BUSY:
            return clip, True
        threshold = self.settings.publish_threshold
        if not ignore_threshold and (clip.viral_score is None or clip.viral_score < threshold):
            known = "not known yet" if clip.viral_score is None else f"{clip.viral_score:.3f}"
            info = PublishInfo(status=PublishStatus.SKIPPED, error=f"viral score {known} is below {threshold:.2f}")
            return await asyncio.to_thread(self.store.set_publish, clip_id, info) or clip, False
        if self.publisher is None:
            raise FailedPrecondition("TikTok publishing is not configured (CREATORMESH_STREAM_CLIPPER_TIKTOK_*)")
        lock = self._locks.setdefault(clip_id, asyncio.Lock())
        async with lock:
            return await self._upload(clip, strategy or self.settings.tiktok_strategy, wait, max_wait_s, caption)

    async def _upload(
        self, clip: Clip, strategy: str, wait: bool, max_wait_s: float, caption: str
    ) -> tuple[Clip, bool]:
        assert self.publisher is not None
        uploading = PublishInfo(status=PublishStatus.UPLOADING, strategy=strategy, attempts=clip.publish.attempts + 1)
        if not await asyncio.to_thread(self.store.claim_publish, clip.clip_id, uploading, BUSY):
            current = await asyncio.to_thread(self.store.get_clip, clip.clip_id)
            return current or clip, True
        await self.bootstrap_token()
        try:
            local = await asyncio.to_thread(
                fetch_local, clip.rendered_media_uri, self.work_dir / "publish", self.storage
            )
            pull_url = self.storage.url(clip.rendered_media_uri) if strategy == "PULL_FROM_URL" else None
            outcome = await self.publisher.publish(
                local, caption=caption or caption_for(self.settings.description_template, clip), strategy=strategy,
                pull_url=pull_url, wait_when_rate_limited=wait, max_wait_s=max_wait_s,
                attempts_so_far=clip.publish.attempts,
            )  # fmt: skip
            info = outcome_info(outcome, strategy)
        except asyncio.CancelledError:  # shutdown mid-upload: not left UPLOADING (busy) forever
            interrupted = PublishInfo(
                status=PublishStatus.FAILED, strategy=strategy, error="interrupted", attempts=uploading.attempts
            )
            self.store.set_publish(clip.clip_id, interrupted)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the clip; PublishClip retries it
            log.warning("publishing %s failed: %s", clip.clip_id, exc)
            info = PublishInfo(
                status=PublishStatus.FAILED, strategy=strategy, error=str(exc)[-1000:], attempts=uploading.attempts
            )
        stored = await asyncio.to_thread(self.store.set_publish, clip.clip_id, info)
        return stored or clip, False

    async def on_scored(self, clip: Clip, *, auto: bool) -> None:
        """The publish decision when a clip's viral score arrives."""
        wanted = auto or clip.clip_id in self.wanted
        if not wanted or clip.status != ClipStatus.RENDERED or clip.publish.status in BUSY:
            return
        self.wanted.discard(clip.clip_id)
        if clip.viral_score is not None and clip.viral_score >= self.settings.publish_threshold:
            if self.publisher is None:
                log.warning("clip %s cleared the threshold but TikTok is not configured", clip.clip_id)
                return
            task = asyncio.create_task(self.publish(clip.clip_id), name=f"publish-{clip.clip_id}")
            self._tasks.add(task)  # uploads run beside the consumer, which moves on
            task.add_done_callback(self._tasks.discard)
        else:
            await self.publish(clip.clip_id)  # records SKIPPED with the reason
