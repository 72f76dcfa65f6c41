"""OAuth access tokens kept in Redis so a restart reuses them (the Kick app token, TikTok user tokens).

The seed's "advanced token management": a token is cached, refreshed shortly before it expires, and survives a
restart of the service, so a fleet of replicas does not re-authenticate every time one of them starts.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from creatormesh.common.redis_pool import redis_client


@dataclass(frozen=True)
class Token:
    """An access token, when it expires (epoch seconds) and, for user tokens, the refresh token."""

    access_token: str
    expires_at: float
    refresh_token: str = ""
    refresh_expires_at: float = 0.0
    scope: str = ""
    open_id: str = ""

    def fresh(self, margin_s: float = 60.0, now: float | None = None) -> bool:
        """True while the token is valid for at least ``margin_s`` more seconds."""
        return (time.time() if now is None else now) + margin_s < self.expires_at

    def refreshable(self, now: float | None = None) -> bool:
        """True when a refresh token is present and not expired (0 = no known expiry)."""
        current = time.time() if now is None else now
        return bool(self.refresh_token) and (self.refresh_expires_at == 0.0 or current < self.refresh_expires_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Token:
        data = json.loads(raw)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class TokenStore(Protocol):
    """Where tokens live between restarts, by name (e.g. "kick:app", "tiktok:user")."""

    async def load(self, name: str) -> Token | None: ...

    async def save(self, name: str, token: Token) -> None: ...

    async def delete(self, name: str) -> None: ...


class MemoryTokenStore:
    """Tokens in this process only (the CLI without Redis)."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}

    async def load(self, name: str) -> Token | None:
        return self._tokens.get(name)

    async def save(self, name: str, token: Token) -> None:
        self._tokens[name] = token

    async def delete(self, name: str) -> None:
        self._tokens.pop(name, None)


class RedisTokenStore:
    """Tokens as JSON strings in Redis, expiring with the token (or its refresh token, whichever is later)."""

    def __init__(self, redis_url: str, prefix: str = "creatormesh:stream_clipper:token:") -> None:
        self.redis_url = redis_url
        self.prefix = prefix

    async def load(self, name: str) -> Token | None:
        raw = await redis_client(self.redis_url).get(self.prefix + name)
        return None if raw is None else Token.from_json(raw)

    async def save(self, name: str, token: Token) -> None:
        until = max(token.expires_at, token.refresh_expires_at if token.refresh_token else 0.0)
        ttl = max(int(until - time.time()), 1) if until else None
        await redis_client(self.redis_url).set(self.prefix + name, token.to_json(), ex=ttl)

    async def delete(self, name: str) -> None:
        await redis_client(self.redis_url).delete(self.prefix + name)
