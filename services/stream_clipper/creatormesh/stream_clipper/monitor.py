"""Polls many Kick channels and reports live/offline transitions, backing off with jitter on errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from creatormesh.stream_clipper.kick import ChannelStatus, KickClient, KickError

log = logging.getLogger(__name__)

Callback = Callable[[ChannelStatus], Awaitable[None]]


class Monitor:
    """Watches a set of channel slugs; `on_live` fires when one goes live (or is first seen live, or a new session
    starts), `on_offline` when a live one goes offline. A failing callback is reported and retried next poll."""

    def __init__(
        self,
        client: KickClient,
        *,
        on_live: Callback,
        on_offline: Callback,
        interval_s: float = 30.0,
        max_backoff_s: float = 300.0,
        jitter: float = 0.2,
        on_error: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.on_live = on_live
        self.on_offline = on_offline
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.jitter = jitter
        self.on_error = on_error
        self.failures = 0
        self._slugs: set[str] = set()
        self._state: dict[str, ChannelStatus] = {}

    @property
    def slugs(self) -> frozenset[str]:
        """The watched slugs (lower case)."""
        return frozenset(self._slugs)

    def add(self, slug: str) -> None:
        """Watch a channel from the next poll on."""
        self._slugs.add(slug.lower())

    def remove(self, slug: str) -> None:
        """Stop watching a channel (no callback fires for it)."""
        self._slugs.discard(slug.lower())
        self._state.pop(slug.lower(), None)

    async def _report(self, slug: str, message: str) -> None:
        log.warning("kick monitor %s: %s", slug, message)
        if self.on_error is not None:
            try:
                await self.on_error(slug, message)
            except Exception:  # a broken error sink must not stop the monitor
                log.exception("on_error failed")

    async def _transition(self, slug: str, status: ChannelStatus) -> None:
        previous = self._state.get(slug)
        was_live = previous is not None and previous.is_live
        callback: Callback | None = None
        if status.is_live and (not was_live or (previous is not None and previous.stream_id != status.stream_id)):
            callback, name = self.on_live, "on_live"
        elif was_live and not status.is_live:
            callback, name = self.on_offline, "on_offline"
        if callback is not None:
            try:
                await callback(status)
            except Exception as exc:  # noqa: BLE001 - keep the old state so the transition fires again
                await self._report(slug, f"{name} failed: {exc!r}")
                return
        self._state[slug] = status

    async def poll_once(self) -> dict[str, ChannelStatus]:
        """One round over every watched slug; fires the transition callbacks and returns the statuses seen."""
        slugs = sorted(self._slugs)
        if not slugs:
            return {}
        statuses = await self.client.channels(slugs)
        for slug in slugs:
            status = statuses.get(slug)
            if status is None:
                await self._report(slug, "channel not found")
                continue
            if slug in self._slugs:
                await self._transition(slug, status)
        return statuses

    def _delay(self, base: float) -> float:
        return max(0.0, base * (1.0 + random.uniform(-self.jitter, self.jitter)))

    def next_delay(self, error: Exception | None = None) -> float:
        """Seconds to wait before the next poll: the interval, or after `failures` errors in a row
        interval * 2**failures capped at max_backoff_s (at least a 429's Retry-After), both with jitter."""
        if self.failures == 0:
            return self._delay(self.interval_s)
        backoff = min(self.max_backoff_s, self.interval_s * 2.0**self.failures)
        if isinstance(error, KickError) and error.retry_after is not None:
            backoff = min(self.max_backoff_s, max(backoff, error.retry_after))
        return self._delay(backoff)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; errors are reported to on_error("*", message) and back off."""
        while not stop.is_set():
            error: Exception | None = None
            try:
                await self.poll_once()
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - any failure of a round backs off and retries
                error = exc
                self.failures += 1
                await self._report("*", str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.next_delay(error))
