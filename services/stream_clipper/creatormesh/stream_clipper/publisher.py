"""Publishing clips to TikTok: upload strategy, account-wide rate-limit backoff, sandbox mode and diagnostics.

The seed's behaviour: a rate limit is per account, so the backoff window (``next_attempt_at``) is shared by every
clip and kept in Redis; unaudited (sandbox) apps may only post ``SELF_ONLY``, which is remembered until cleared.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from creatormesh.common.redis_pool import redis_client
from creatormesh.stream_clipper.tiktok import RateLimited, TikTokClient, TikTokError, plan_chunks

SANDBOX_CODE = "unaudited_client_can_only_post_to_private_accounts"
SPAM_CODE = "spam_risk_too_many_posts"
SELF_ONLY = "SELF_ONLY"


class PublisherState(Protocol):
    """Account-wide publishing state: backoff window (until epoch s, consecutive failures) and sandbox flag."""

    async def get_backoff(self) -> tuple[float, int]: ...

    async def set_backoff(self, until: float, failures: int) -> None: ...

    async def get_sandbox(self) -> bool: ...

    async def set_sandbox(self, sandbox: bool) -> None: ...


class MemoryPublisherState:
    """State in this process only."""

    def __init__(self) -> None:
        self.backoff: tuple[float, int] = (0.0, 0)
        self.sandbox = False

    async def get_backoff(self) -> tuple[float, int]:
        return self.backoff

    async def set_backoff(self, until: float, failures: int) -> None:
        self.backoff = (until, failures)

    async def get_sandbox(self) -> bool:
        return self.sandbox

    async def set_sandbox(self, sandbox: bool) -> None:
        self.sandbox = sandbox


class RedisPublisherState:
    """State in Redis, shared by all replicas publishing to the same account."""

    def __init__(self, redis_url: str, prefix: str = "creatormesh:stream_clipper:tiktok:") -> None:
        self.redis_url = redis_url
        self.prefix = prefix

    async def get_backoff(self) -> tuple[float, int]:
        raw = await redis_client(self.redis_url).get(self.prefix + "backoff")
        if raw is None:
            return 0.0, 0
        data = json.loads(raw)
        return float(data["until"]), int(data["failures"])

    async def set_backoff(self, until: float, failures: int) -> None:
        key = self.prefix + "backoff"
        if failures <= 0 and until <= time.time():
            await redis_client(self.redis_url).delete(key)
            return
        ttl = max(int(until - time.time()), 0) + 86400  # failure count decays a day after the window
        await redis_client(self.redis_url).set(key, json.dumps({"until": until, "failures": failures}), ex=ttl)

    async def get_sandbox(self) -> bool:
        return bool(await redis_client(self.redis_url).exists(self.prefix + "sandbox"))

    async def set_sandbox(self, sandbox: bool) -> None:
        if sandbox:
            await redis_client(self.redis_url).set(self.prefix + "sandbox", "1")
        else:
            await redis_client(self.redis_url).delete(self.prefix + "sandbox")


@dataclass
class PublishOutcome:
    """Result of one publish call: PUBLISHED, PROCESSING (poll timed out), PENDING (rate limited) or FAILED."""

    status: str
    publish_id: str = ""
    post_url: str = ""
    error: str = ""
    attempts: int = 0
    next_attempt_at: float | None = None
    sandbox: bool = False
    published_at: float | None = None


class Publisher:
    """Publishes rendered clips with TikTok's Direct Post flow, honouring backoff and sandbox state."""

    def __init__(
        self,
        client: TikTokClient,
        state: PublisherState,
        *,
        poll_interval_s: float = 5.0,
        poll_timeout_s: float = 600.0,
        base_backoff_s: float = 60.0,
        max_backoff_s: float = 3600.0,
        privacy_level: str = "PUBLIC_TO_EVERYONE",
    ) -> None:
        self.client = client
        self.state = state
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.privacy_level = privacy_level
        self._username = ""

    def backoff_delay(self, failures: int, retry_after_s: float = 0.0) -> float:
        """Exponential delay for the n-th consecutive rate limit, with up to 25 % jitter, capped."""
        delay = self.base_backoff_s * 2.0 ** max(failures - 1, 0) * (1.0 + random.random() * 0.25)
        return max(min(delay, self.max_backoff_s), retry_after_s)

    async def publish(
        self,
        path: Path,
        *,
        caption: str,
        strategy: str = "MULTIPART",
        pull_url: str | None = None,
        wait_when_rate_limited: bool = False,
        max_wait_s: float = 2400.0,
        attempts_so_far: int = 0,
    ) -> PublishOutcome:
        """Upload and post one clip; see the module doc for backoff and sandbox rules."""
        attempts = attempts_so_far
        deadline = time.time() + max_wait_s
        while True:
            until, failures = await self.state.get_backoff()
            now = time.time()
            sandbox = await self.state.get_sandbox()
            if until > now:
                if wait_when_rate_limited and until <= deadline:
                    await asyncio.sleep(until - now)
                    continue
                return PublishOutcome("PENDING", attempts=attempts, next_attempt_at=until, sandbox=sandbox)
            attempts += 1
            try:
                publish_id = await self._start(path, caption, strategy, pull_url, SELF_ONLY if sandbox else None)
            except RateLimited as exc:
                delay = self.backoff_delay(failures + 1, exc.retry_after_s)
                await self.state.set_backoff(time.time() + delay, failures + 1)
                continue
            except TikTokError as exc:
                if exc.code == SANDBOX_CODE and not sandbox:
                    await self.state.set_sandbox(True)
                    continue
                if exc.code == SPAM_CODE:  # daily post cap: wait out the longest window
                    await self.state.set_backoff(time.time() + self.max_backoff_s, failures + 1)
                return PublishOutcome("FAILED", error=str(exc), attempts=attempts, sandbox=sandbox)
            if failures:
                await self.state.set_backoff(0.0, 0)
            outcome = await self._poll(publish_id, sandbox)
            outcome.attempts = attempts
            return outcome

    async def _start(self, path: Path, caption: str, strategy: str, pull_url: str | None, privacy: str | None) -> str:
        """creator_info (for the username), init and, for FILE_UPLOAD, the chunked upload; returns publish_id."""
        if not self._username:
            info = await self.client.creator_info()
            self._username = str(info.get("creator_username", ""))
        privacy_level = privacy or self.privacy_level
        if pull_url:
            publish_id, _ = await self.client.init_upload(
                None, title=caption, privacy_level=privacy_level, pull_url=pull_url
            )
            return publish_id
        size = (await asyncio.to_thread(path.stat)).st_size
        plan = plan_chunks(size, multipart=strategy.upper() == "MULTIPART")
        publish_id, upload_url = await self.client.init_upload(plan, title=caption, privacy_level=privacy_level)
        await self.client.upload(upload_url, path, plan)
        return publish_id

    def _post_url(self, data: dict[str, Any]) -> str:
        ids = data.get("publicaly_available_post_id") or []
        if not ids:
            return ""
        post_id = str(ids[0])
        return f"https://www.tiktok.com/@{self._username}/video/{post_id}" if self._username else post_id

    async def _poll(self, publish_id: str, sandbox: bool) -> PublishOutcome:
        """Poll status/fetch until a final state or ``poll_timeout_s`` (then PROCESSING)."""
        deadline = time.monotonic() + self.poll_timeout_s
        while True:
            wait = self.poll_interval_s
            try:
                data = await self.client.status(publish_id)
            except RateLimited as exc:
                data, wait = {}, max(wait, exc.retry_after_s)
            except TikTokError as exc:
                return PublishOutcome("FAILED", publish_id, error=str(exc), sandbox=sandbox)
            status = str(data.get("status", ""))
            if status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX"):
                # SEND_TO_USER_INBOX is final on our side (sandbox / inbox flow): the user finishes the post
                return PublishOutcome(
                    "PUBLISHED", publish_id, self._post_url(data), sandbox=sandbox, published_at=time.time()
                )
            if status == "FAILED":
                reason = str(data.get("fail_reason", "") or "failed")
                return PublishOutcome("FAILED", publish_id, error=reason, sandbox=sandbox)
            if time.monotonic() + wait > deadline:
                return PublishOutcome("PROCESSING", publish_id, error=status, sandbox=sandbox)
            await asyncio.sleep(wait)

    async def diagnose(self) -> dict[str, Any]:
        """Token validity and refreshability, creator_info (or its error), sandbox state and backoff remaining."""
        now = time.time()
        token = await self.client.stored_token()
        token_info: dict[str, Any] = {"present": token is not None}
        if token is not None:
            token_info.update(
                valid=token.fresh(0.0, now),
                expires_in=round(token.expires_at - now, 1),
                refreshable=token.refreshable(now),
                refresh_expires_in=round(token.refresh_expires_at - now, 1) if token.refresh_expires_at else None,
                scope=token.scope,
                open_id=token.open_id,
            )
        try:
            creator: dict[str, Any] = await self.client.creator_info()
        except TikTokError as exc:
            creator = {"error": exc.code, "message": exc.message, "log_id": exc.log_id}
        until, failures = await self.state.get_backoff()
        return {
            "token": token_info,
            "creator_info": creator,
            "sandbox": await self.state.get_sandbox(),
            "backoff": {"until": until or None, "remaining_s": round(max(until - now, 0.0), 1), "failures": failures},
        }

    async def clear_sandbox_state(self) -> None:
        """Forget the sandbox flag so the next publish tries the configured privacy level again."""
        await self.state.set_sandbox(False)
