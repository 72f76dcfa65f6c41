"""Redis access: one pooled asyncio client per URL and event loop."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis.asyncio as aioredis

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()


def redis_client(url: str) -> Any:
    """The shared client for ``url`` in the running event loop (connections are pooled inside it)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        client = per_loop[url] = aioredis.Redis.from_url(
            url, health_check_interval=30, socket_connect_timeout=5, socket_timeout=10
        )
    return client


async def ping(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server answers at ``url`` (a throwaway connection, not the pool)."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()
