"""Live clipping: Kick channels are polled; a live one is recorded in chunks and every finished chunk goes
through the pipeline. Channels, chunks and clips are in the store, so a restart resumes the recording (the
recorder continues its chunk numbering) and processes chunks that were recorded but not clipped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from creatormesh.stream_clipper.kick import ChannelStatus, KickClient
from creatormesh.stream_clipper.monitor import Monitor
from creatormesh.stream_clipper.pipeline import Parts, Progress, analyse, clips_from, produce
from creatormesh.stream_clipper.recorder import Chunk, Recorder
from creatormesh.stream_clipper.records import Channel, Clip, Job, MonitorState, Options
from creatormesh.stream_clipper.sources import SourceError, probe
from creatormesh.stream_clipper.store import ClipStore
from creatormesh.stream_clipper.tokens import RedisTokenStore

if TYPE_CHECKING:
    from creatormesh.stream_clipper.settings import StreamClipperSettings

log = logging.getLogger("creatormesh.stream_clipper.live")
OnClip = Callable[[Clip], Awaitable[None]]
OnRound = Callable[[dict[str, ChannelStatus], set[str]], Awaitable[None]]


class _RoundMonitor(Monitor):
    """A Monitor that calls `on_round(statuses, failed)` after every successful round, where `failed` holds the
    slugs an error was reported for during that round."""

    def __init__(
        self, client: KickClient, *, on_round: OnRound, on_error: Callable[[str, str], Awaitable[None]], **kw: Any
    ) -> None:
        self.failed: set[str] = set()
        self.on_round = on_round

        async def report(slug: str, message: str) -> None:
            self.failed.add(slug)
            await on_error(slug, message)

        super().__init__(client, on_error=report, **kw)

    async def poll_once(self) -> dict[str, ChannelStatus]:
        self.failed = set()
        statuses = await super().poll_once()
        await self.on_round(statuses, self.failed)
        return statuses


async def _quiet(_: Progress) -> None:
    return None


class LiveClipper:
    """Monitors channels (from the store) and clips their live streams chunk by chunk."""

    def __init__(
        self, settings: StreamClipperSettings, parts: Parts, store: ClipStore, redis_url: str, on_clip: OnClip
    ) -> None:
        self.parts = parts
        self.store = store
        self.on_clip = on_clip
        self._http = httpx.AsyncClient(timeout=30.0)
        self.client = KickClient(
            self._http, RedisTokenStore(redis_url, prefix=f"{settings.redis_prefix}:token:"),
            client_id=settings.kick_client_id, client_secret=settings.kick_client_secret,
            auth_url=settings.kick_auth_url, api_url=settings.kick_api_url, playback_api=settings.kick_playback_api,
        )  # fmt: skip
        self.monitor = _RoundMonitor(
            self.client, on_live=self._on_live, on_offline=self._on_offline, interval_s=settings.kick_poll_seconds,
            on_error=self._on_error, on_round=self._on_round,
        )  # fmt: skip
        self.stall_s = settings.record_stall_seconds
        self._recorders: dict[str, tuple[Recorder, asyncio.Task[int]]] = {}
        self._chunks: asyncio.Queue[tuple[str, str, int, str, float, float]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        """Serialises the read-modify-write of channel rows (monitor, recorders, chunk worker and RPCs)."""
        self._unsettled: set[str] = set()
        self._broken: set[str] = set()  # channels whose recorder failed while they were live
        """Slugs whose stored state (ERROR, or RECORDING left by an earlier run) awaits the next good status."""

    async def start(self) -> None:
        for channel in await asyncio.to_thread(self.store.list_channels, limit=100_000):
            self.monitor.add(channel.slug)
            if channel.state in (MonitorState.ERROR, MonitorState.RECORDING):
                self._unsettled.add(channel.slug)
        for pending in await asyncio.to_thread(self.store.pending_chunks):
            self._chunks.put_nowait(pending)
        self._tasks = [
            asyncio.create_task(self.monitor.run(self._stop), name="clipper-monitor"),
            asyncio.create_task(self._process_chunks(), name="clipper-chunks"),
        ]

    async def stop(self) -> None:
        self._stop.set()
        for recorder, _ in self._recorders.values():
            recorder.stop()
        recording = [task for _, task in self._recorders.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*recording, return_exceptions=True), timeout=15.0)
        for task in [*self._tasks, *recording]:
            task.cancel()
        await asyncio.gather(*self._tasks, *recording, return_exceptions=True)
        await self._http.aclose()

    # --- channels ------------------------------------------------------------
    async def add(self, slug: str, chunk_seconds: int, options: Options) -> tuple[Channel, bool]:
        async with self._lock:
            current = await asyncio.to_thread(self.store.get_channel, slug)
            channel = (
                replace(current, chunk_seconds=chunk_seconds, options=options)
                if current
                else Channel(slug=slug, chunk_seconds=chunk_seconds, options=options)
            )
            stored, existed = await asyncio.to_thread(self.store.save_channel, channel)
        self.monitor.add(slug)
        return stored, existed

    async def remove(self, slug: str) -> bool:
        self.monitor.remove(slug)
        self._unsettled.discard(slug)
        entry = self._recorders.get(slug)
        if entry is not None:
            entry[0].stop()  # the current chunk is finished and still clipped
        async with self._lock:
            return await asyncio.to_thread(self.store.delete_channel, slug)

    async def _update(self, slug: str, change: Callable[[Channel], Channel]) -> Channel | None:
        """Apply `change` to the stored channel (atomically within this process); None when it is not monitored."""
        async with self._lock:
            channel = await asyncio.to_thread(self.store.get_channel, slug)
            if channel is None:
                return None
            channel = replace(change(channel), last_checked_at=datetime.now(UTC))
            stored, _ = await asyncio.to_thread(self.store.save_channel, channel)
            return stored

    async def _on_live(self, status: ChannelStatus) -> None:
        def live(c: Channel) -> Channel:
            chunks = c.chunks_recorded if c.stream_id == status.stream_id else 0  # counted per stream
            return replace(
                c, state=MonitorState.RECORDING, stream_id=status.stream_id, error="", chunks_recorded=chunks,
                last_live_at=datetime.now(UTC),
            )  # fmt: skip

        channel = await self._update(status.slug, live)
        if channel is None or status.slug in self._recorders:
            return
        url = await self.client.playback_url(status.slug)
        out = self.parts.work_dir / "live" / status.stream_id
        recorder = Recorder(
            url, out, chunk_s=channel.chunk_seconds, stall_timeout_s=self.stall_s,
            on_chunk=lambda chunk: self._on_chunk(status.slug, status.stream_id, chunk),
        )  # fmt: skip
        task = asyncio.create_task(recorder.run(), name=f"clipper-record-{status.slug}")
        self._recorders[status.slug] = (recorder, task)
        task.add_done_callback(lambda _: self._recorded(status.slug, recorder))

    def _recorded(self, slug: str, recorder: Recorder) -> None:
        """A recording ended: normally (the stream ended, or stop()) or not (ffmpeg failed or stalled); a failed
        one is started again on the same directory while the channel is still live (see _on_round)."""
        self._recorders.pop(slug, None)
        if recorder.returncode != 0 and not self._stop.is_set() and slug in self.monitor.slugs:
            self._broken.add(slug)

    async def _on_offline(self, status: ChannelStatus) -> None:
        await self._update(status.slug, lambda c: replace(c, state=MonitorState.OFFLINE, error=""))

    async def _on_error(self, slug: str, message: str) -> None:
        """A failed round ("*") puts every channel not being recorded in ERROR; a channel's own error puts it."""
        slugs = [s for s in sorted(self.monitor.slugs) if s not in self._recorders] if slug == "*" else [slug]
        for name in slugs:
            self._unsettled.add(name)
            await self._update(name, lambda c: replace(c, state=MonitorState.ERROR, error=message[-500:]))

    async def _on_round(self, statuses: dict[str, ChannelStatus], failed: set[str]) -> None:
        """After a good round: channels in ERROR (or left RECORDING by an earlier run) take their real state, and a
        recording that failed while the channel is still live is resumed."""
        for slug in sorted(self._broken):
            status = statuses.get(slug)
            self._broken.discard(slug)
            if status is not None and status.is_live and slug not in self._recorders:
                log.info("recording of %s failed while live: resuming it", slug)
                await self._on_live(status)
        for slug in sorted(self._unsettled - failed):
            status = statuses.get(slug)
            if status is None:
                continue
            if slug in self._recorders:
                state = MonitorState.RECORDING
            elif not status.is_live:
                state = MonitorState.OFFLINE
            else:
                continue  # live but not recorded (yet): on_live settles it
            try:
                await self._update(slug, partial(replace, state=state, error=""))
            except Exception:  # retried after the next round
                log.exception("could not settle the state of %s", slug)
                continue
            self._unsettled.discard(slug)

    async def _on_chunk(self, slug: str, stream_id: str, chunk: Chunk) -> None:
        """Remember the chunk (the recorder moves on at once); a worker clips it."""
        row = (slug, stream_id, chunk.index, str(chunk.path), chunk.start_s, chunk.end_s)
        if await asyncio.to_thread(self.store.record_chunk, *row):
            await self._update(slug, lambda c: replace(c, chunks_recorded=c.chunks_recorded + 1))
            self._chunks.put_nowait(row)

    async def _process_chunks(self) -> None:
        while not self._stop.is_set():
            row = await self._chunks.get()
            try:
                try:
                    await self.clip_chunk(*row)
                except (SourceError, RuntimeError, OSError) as exc:  # a broken chunk is skipped, not retried forever
                    log.warning("chunk %s/%d could not be clipped: %s", row[1], row[2], exc)
                await asyncio.to_thread(self.store.mark_chunk_processed, row[1], row[2])
            except Exception:  # the worker keeps going; the chunk stays pending until a restart
                log.exception("chunk %s/%d failed", row[1], row[2])

    async def clip_chunk(
        self, slug: str, stream_id: str, index: int, path: str, start_s: float, end_s: float
    ) -> list[Clip]:
        """Detect, cut and render the highlights of one recorded chunk (times on the stream's timeline)."""
        channel = await asyncio.to_thread(self.store.get_channel, slug)
        options = channel.options if channel is not None else Options()
        source = Path(path)
        info = await asyncio.to_thread(probe, source)
        job = Job(job_id="", request_id="", source_uri=path, streamer=slug, stream_id=stream_id, options=options)
        analysis = await analyse(
            self.parts, source, options, _quiet, has_video=info.has_video, duration_s=info.duration_s
        )
        done: list[Clip] = []
        for clip in clips_from(job, analysis, offset_s=start_s, id_prefix=f"{stream_id}-k{index:05d}"):
            saved = await asyncio.to_thread(self.store.save_clip, clip)
            produced = await produce(self.parts, self.store, saved, source, options, start_s)
            done.append(produced)
            await self.on_clip(produced)
        if done:
            await self._update(slug, lambda c: replace(c, clips_created=c.clips_created + len(done)))
        return done
