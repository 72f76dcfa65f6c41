"""TikTok Content Posting API client: token refresh, creator info, direct-post init, chunked upload, status.

Endpoints and shapes follow developers.tiktok.com (Direct Post, Media Transfer Guide, OAuth v2). Every JSON answer
carries ``error{code, message, log_id}``; ``code == "ok"`` means success. Errors become :class:`TikTokError`, and
HTTP 429 / ``rate_limit_exceeded`` becomes :class:`RateLimited`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from creatormesh.stream_clipper.tokens import Token, TokenStore

MB = 1024 * 1024
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
MAX_CHUNKS = 1000
REFRESH_MARGIN_S = 300.0


class TikTokError(RuntimeError):
    """An error answer from TikTok (``code`` as documented, e.g. ``access_token_invalid``)."""

    def __init__(self, code: str, message: str = "", *, http_status: int = 0, log_id: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.log_id = log_id


class RateLimited(TikTokError):
    """HTTP 429 / ``rate_limit_exceeded``; ``retry_after_s`` from a Retry-After header (0 when absent)."""

    def __init__(self, message: str = "", *, http_status: int = 429, log_id: str = "", retry_after_s: float = 0.0):
        super().__init__("rate_limit_exceeded", message, http_status=http_status, log_id=log_id)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class UploadPlan:
    """How a FILE_UPLOAD is split: ``chunk_count`` chunks of ``chunk_size``, the last one takes the remainder."""

    video_size: int
    chunk_size: int
    chunk_count: int

    def ranges(self) -> list[tuple[int, int]]:
        """Inclusive (first_byte, last_byte) of each chunk, in upload order."""
        out = [(i * self.chunk_size, (i + 1) * self.chunk_size - 1) for i in range(self.chunk_count)]
        out[-1] = (out[-1][0], self.video_size - 1)
        return out


def plan_chunks(video_size: int, multipart: bool, chunk_size: int = 10 * MB) -> UploadPlan:
    """Plan chunks by TikTok's rules: 5..64 MB chunks, count = floor(size / chunk), last chunk takes the rest.

    A video under 5 MB (or any video when not ``multipart``, up to 64 MB) goes as one chunk of its own size;
    videos over 64 MB are always chunked.
    """
    if video_size <= 0:
        raise ValueError("empty video")
    if video_size < MIN_CHUNK or (not multipart and video_size <= MAX_CHUNK):
        return UploadPlan(video_size, video_size, 1)
    size = min(max(chunk_size, MIN_CHUNK), MAX_CHUNK)
    size = max(size, -(-video_size // MAX_CHUNKS))
    if video_size < size:
        return UploadPlan(video_size, video_size, 1)
    return UploadPlan(video_size, size, video_size // size)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "0")), 0.0)
    except ValueError:
        return 0.0


class TikTokClient:
    """One TikTok user's Content Posting API session; its token lives in a :class:`TokenStore`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenStore,
        *,
        client_key: str,
        client_secret: str,
        api_url: str = "https://open.tiktokapis.com",
        token_name: str = "tiktok:user",
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.client_key = client_key
        self.client_secret = client_secret
        self.api_url = api_url.rstrip("/")
        self.token_name = token_name
        self._lock = asyncio.Lock()

    async def stored_token(self) -> Token | None:
        """The stored token as is (no refresh)."""
        return await self.tokens.load(self.token_name)

    async def access_token(self) -> str:
        """A valid access token, refreshed (and saved) when it expires within 5 minutes."""
        async with self._lock:
            token = await self.tokens.load(self.token_name)
            if token is None:
                raise TikTokError("token_missing", f"no TikTok token stored under {self.token_name!r}")
            if token.fresh(REFRESH_MARGIN_S):
                return token.access_token
            return (await self._refresh(token)).access_token

    async def refresh(self) -> Token:
        """Refresh the stored token now (e.g. after ``access_token_invalid``) and save it."""
        async with self._lock:
            token = await self.tokens.load(self.token_name)
            if token is None:
                raise TikTokError("token_missing", f"no TikTok token stored under {self.token_name!r}")
            return await self._refresh(token)

    async def _refresh(self, token: Token) -> Token:
        if not token.refreshable():
            raise TikTokError("refresh_token_expired", "re-authorize the TikTok account")
        form = {
            "client_key": self.client_key,
            "client_secret": self.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token,
        }
        response = await self.http.post(f"{self.api_url}/v2/oauth/token/", data=form)
        body = self._json(response)
        if response.status_code == 429:
            raise RateLimited(str(body.get("error_description", "")), retry_after_s=_retry_after(response))
        if "access_token" not in body:
            code = body.get("error")
            code = code.get("code", "") if isinstance(code, dict) else code
            raise TikTokError(
                str(code or "token_refresh_failed"),
                str(body.get("error_description", "")),
                http_status=response.status_code,
                log_id=str(body.get("log_id", "")),
            )
        now = time.time()
        new = Token(
            access_token=str(body["access_token"]),
            expires_at=now + float(body.get("expires_in", 86400)),
            refresh_token=str(body.get("refresh_token") or token.refresh_token),
            refresh_expires_at=now + float(body["refresh_expires_in"])
            if body.get("refresh_expires_in")
            else token.refresh_expires_at,
            scope=str(body.get("scope", token.scope)),
            open_id=str(body.get("open_id", token.open_id)),
        )
        await self.tokens.save(self.token_name, new)
        return new

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the bearer token; one refresh-and-retry on ``access_token_invalid``."""
        for attempt in range(2):
            headers = {
                "Authorization": f"Bearer {await self.access_token()}",
                "Content-Type": "application/json; charset=UTF-8",
            }
            response = await self.http.post(f"{self.api_url}{path}", json=payload, headers=headers)
            body = self._json(response)
            raw_error = body.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            code = str(error.get("code", "ok" if response.is_success else f"http_{response.status_code}"))
            message, log_id = str(error.get("message", "")), str(error.get("log_id", ""))
            if response.status_code == 429 or code == "rate_limit_exceeded":
                raise RateLimited(
                    message, http_status=response.status_code, log_id=log_id, retry_after_s=_retry_after(response)
                )
            if code == "access_token_invalid" and attempt == 0:
                await self.refresh()
                continue
            if code != "ok" or not response.is_success:
                raise TikTokError(code, message, http_status=response.status_code, log_id=log_id)
            data = body.get("data")
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")

    async def creator_info(self) -> dict[str, Any]:
        """creator_username, creator_nickname, privacy_level_options, ... of the authorized user."""
        return await self._post("/v2/post/publish/creator_info/query/", {})

    async def init_upload(
        self, plan: UploadPlan | None, *, title: str, privacy_level: str, pull_url: str | None = None
    ) -> tuple[str, str]:
        """Start a direct post; returns (publish_id, upload_url) — upload_url is "" for PULL_FROM_URL."""
        if pull_url:
            source: dict[str, Any] = {"source": "PULL_FROM_URL", "video_url": pull_url}
        elif plan is not None:
            source = {
                "source": "FILE_UPLOAD",
                "video_size": plan.video_size,
                "chunk_size": plan.chunk_size,
                "total_chunk_count": plan.chunk_count,
            }
        else:
            raise ValueError("need an UploadPlan or a pull_url")
        post_info = {
            "title": title,
            "privacy_level": privacy_level,
            "disable_duet": False,
            "disable_comment": False,
            "disable_stitch": False,
            "video_cover_timestamp_ms": 1000,
        }
        data = await self._post("/v2/post/publish/video/init/", {"post_info": post_info, "source_info": source})
        publish_id = str(data.get("publish_id", ""))
        if not publish_id:
            raise TikTokError("invalid_response", "init returned no publish_id")
        return publish_id, str(data.get("upload_url", ""))

    async def upload(self, upload_url: str, path: Path, plan: UploadPlan) -> None:
        """PUT the file's chunks in order with Content-Range; expects 206 for each chunk and 201 at the end."""
        with path.open("rb") as fh:
            for first, last in plan.ranges():
                fh.seek(first)
                chunk = await asyncio.to_thread(fh.read, last - first + 1)
                headers = {"Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{last}/{plan.video_size}"}
                response = await self.http.put(upload_url, content=chunk, headers=headers)
                if response.status_code == 429:
                    raise RateLimited("upload", retry_after_s=_retry_after(response))
                if response.status_code not in (200, 201, 206):
                    raise TikTokError(
                        "upload_failed",
                        f"chunk {first}-{last}: HTTP {response.status_code} {response.text[:200]}",
                        http_status=response.status_code,
                    )

    async def status(self, publish_id: str) -> dict[str, Any]:
        """status (PROCESSING_UPLOAD, ..., PUBLISH_COMPLETE, FAILED), fail_reason, publicaly_available_post_id."""
        return await self._post("/v2/post/publish/status/fetch/", {"publish_id": publish_id})
