"""Kick's official API with an OAuth2 app token (client credentials), and the HLS playback URL of a live channel.

The app token comes from POST https://id.kick.com/oauth/token, is cached in memory and in a TokenStore (Redis in
production, under "kick:app") and refreshed `refresh_margin_s` before it expires, so a restart reuses it. Channel
status comes from GET https://api.kick.com/public/v1/channels?slug=... (at most 50 slugs a request). The official
API has no playback URL; like streamlink's Kick plugin we read it from kick.com/api/v2/channels/{slug}/livestream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from creatormesh.stream_clipper.tokens import Token, TokenStore

TOKEN_NAME = "kick:app"
BATCH = 50
"""Slugs per /public/v1/channels request (Kick's limit)."""


@dataclass(frozen=True)
class ChannelStatus:
    """A channel's live state; `stream_id` is stable for one live session ("" when offline)."""

    slug: str
    is_live: bool
    broadcaster_user_id: int
    stream_id: str
    started_at: datetime | None
    title: str
    viewer_count: int


class KickError(RuntimeError):
    """A Kick request failed: HTTP `status` (0 for a network error), `retry_after` seconds when rate-limited."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"kick: HTTP {status}: {message}" if status else f"kick: {message}")
        self.status = status
        self.retry_after = retry_after


def _parse_time(raw: object) -> datetime | None:
    """ISO-8601 start time; None for missing values and Kick's zero time (0001-01-01) of offline channels."""
    if not isinstance(raw, str) or not raw or raw.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_channel(item: dict[str, Any]) -> ChannelStatus:
    """A ChannelStatus from one element of the /public/v1/channels `data` list."""
    slug = str(item.get("slug", "")).lower()
    stream = item.get("stream") or {}
    is_live = bool(stream.get("is_live"))
    started = _parse_time(stream.get("start_time")) if is_live else None
    stream_id = ""
    if is_live:
        stream_id = f"kick-{slug}-{started.strftime('%Y%m%dT%H%M%S')}" if started else f"kick-{slug}-live"
    return ChannelStatus(
        slug=slug,
        is_live=is_live,
        broadcaster_user_id=int(item.get("broadcaster_user_id") or 0),
        stream_id=stream_id,
        started_at=started,
        title=str(item.get("stream_title") or ""),
        viewer_count=int(stream.get("viewer_count") or 0) if is_live else 0,
    )


def _error(resp: httpx.Response) -> KickError:
    retry = resp.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry is not None else None
    except ValueError:
        retry_after = None
    return KickError(resp.status_code, resp.text[:200], retry_after)


class KickClient:
    """Kick API client sharing one app token between concurrent callers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenStore,
        *,
        client_id: str,
        client_secret: str,
        auth_url: str = "https://id.kick.com/oauth/token",
        api_url: str = "https://api.kick.com",
        playback_api: str = "https://kick.com/api/v2/channels/{slug}/livestream",
        refresh_margin_s: float = 300.0,
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_url = auth_url
        self.api_url = api_url.rstrip("/")
        self.playback_api = playback_api
        self.refresh_margin_s = refresh_margin_s
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid app access token: from memory, else the store, else a new one from the token endpoint."""
        return await self._get_token(rejected=None)

    async def _get_token(self, rejected: str | None) -> str:
        async with self._lock:
            cached = self._token
            if cached is None or not cached.fresh(self.refresh_margin_s) or cached.access_token == rejected:
                cached = await self.tokens.load(TOKEN_NAME)
            if cached is None or not cached.fresh(self.refresh_margin_s) or cached.access_token == rejected:
                cached = await self._fetch_token()
                await self.tokens.save(TOKEN_NAME, cached)
            self._token = cached
            return cached.access_token

    async def _fetch_token(self) -> Token:
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        try:
            resp = await self.http.post(self.auth_url, data=form)
        except httpx.HTTPError as exc:
            raise KickError(0, f"token request failed: {exc!r}") from exc
        if resp.status_code != 200:
            raise _error(resp)
        body = resp.json()
        return Token(access_token=str(body["access_token"]), expires_at=time.time() + float(body["expires_in"]))

    async def _get(self, url: str, params: dict[str, list[str]]) -> Any:
        """GET with the bearer token; on 401 one new token and one retry."""
        token = await self.token()
        for attempt in range(2):
            try:
                resp = await self.http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise KickError(0, f"GET {url} failed: {exc!r}") from exc
            if resp.status_code == 401 and attempt == 0:
                token = await self._get_token(rejected=token)
                continue
            if resp.status_code != 200:
                raise _error(resp)
            return resp.json()
        raise AssertionError("unreachable")

    async def _batch(self, slugs: Sequence[str]) -> dict[str, ChannelStatus]:
        body = await self._get(f"{self.api_url}/public/v1/channels", {"slug": list(slugs)})
        statuses = (parse_channel(item) for item in body.get("data") or [])
        return {st.slug: st for st in statuses}

    async def channels(self, slugs: Sequence[str]) -> dict[str, ChannelStatus]:
        """Status of each known channel by (lower-case) slug, in concurrent batches of 50; unknown slugs are absent."""
        unique = list(dict.fromkeys(s.lower() for s in slugs))
        batches = [unique[i : i + BATCH] for i in range(0, len(unique), BATCH)]
        result: dict[str, ChannelStatus] = {}
        for part in await asyncio.gather(*(self._batch(b) for b in batches)):
            result.update(part)
        return result

    async def playback_url(self, slug: str) -> str:
        """The HLS master playlist URL of a live channel; KickError(404) when it is offline or unknown."""
        url = self.playback_api.format(slug=slug.lower())
        try:
            resp = await self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise KickError(0, f"GET {url} failed: {exc!r}") from exc
        if resp.status_code != 200:
            raise _error(resp)
        data = resp.json().get("data") or {}
        playback = data.get("playback_url") if isinstance(data, dict) else None
        if not playback:
            raise KickError(404, f"{slug} is not live (no playback_url)")
        return str(playback)
