"""Records a live HLS stream into fixed-length MPEG-TS chunks with one ffmpeg process, resumable after a crash.

ffmpeg's segment muxer writes `chunk_NNNNN.ts` files and appends a line to a per-run CSV list
(`segments_NNNNN.csv`, named after the run's first chunk) when a chunk is complete; the recorder watches that list
and calls `on_chunk` for each new chunk, then notes it in `delivered.json`. A new Recorder on the same directory
keeps the complete chunks, delivers those whose `on_chunk` never returned, deletes an incomplete trailing chunk,
and continues numbering and the timeline after the last complete chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from creatormesh.common.media import ffmpeg_exe

log = logging.getLogger(__name__)

DELIVERED = "delivered.json"
_LIST = re.compile(r"segments_(\d+)\.csv")
_CHUNK = re.compile(r"chunk_(\d+)\.ts")
STOP_GRACE_S = 15.0
"""Seconds ffmpeg gets to finish the current chunk after 'q' before SIGINT, then as long again before a kill."""


@dataclass(frozen=True)
class Chunk:
    """A complete chunk: its number, file and span in seconds from the start of the recording."""

    index: int
    path: Path
    start_s: float
    end_s: float


def _rows(path: Path) -> list[list[str]]:
    """The complete (newline-terminated) rows of a segment list CSV."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    complete = text[: text.rfind("\n") + 1]
    return [row for row in csv.reader(complete.splitlines()) if len(row) >= 3]


def _chunks_of(out_dir: Path, rows: list[list[str]], offset: float) -> list[Chunk]:
    """Chunks of one run's rows, with times moved so the run starts at `offset`."""
    if not rows:
        return []
    first = float(rows[0][1])
    chunks = []
    for name, start, end, *_ in rows:
        match = _CHUNK.fullmatch(Path(name).name)
        if match is None:
            continue
        chunks.append(
            Chunk(int(match.group(1)), out_dir / name, offset + float(start) - first, offset + float(end) - first)
        )
    return chunks


def recorded_chunks(out_dir: Path) -> list[Chunk]:
    """Every complete chunk listed in the directory's segment lists, in order, on one continuous timeline."""
    lists = sorted((int(m.group(1)), p) for p in out_dir.glob("segments_*.csv") if (m := _LIST.fullmatch(p.name)))
    chunks: list[Chunk] = []
    for _, path in lists:
        chunks += _chunks_of(out_dir, _rows(path), chunks[-1].end_s if chunks else 0.0)
    return chunks


class Recorder:
    """Records `url` into `out_dir` in chunks of about `chunk_s` seconds (cut at keyframes), calling `on_chunk`
    for each complete chunk. ffmpeg is killed when it makes no progress for `stall_timeout_s`."""

    def __init__(
        self,
        url: str,
        out_dir: Path,
        *,
        chunk_s: float,
        on_chunk: Callable[[Chunk], Awaitable[None]],
        stall_timeout_s: float = 60.0,
    ) -> None:
        self.url = url
        self.out_dir = Path(out_dir)
        self.chunk_s = chunk_s
        self.on_chunk = on_chunk
        self.stall_timeout_s = stall_timeout_s
        self.returncode: int | None = None
        self.stderr_tail = ""
        self._stopping = False
        self._delivered: set[int] = set()
        self._count = 0
        self._progress_at = 0.0

    def stop(self) -> None:
        """Finish the current chunk (its on_chunk still runs) and end the recording."""
        self._stopping = True

    def _save_delivered(self) -> None:
        tmp = self.out_dir / (DELIVERED + ".tmp")
        tmp.write_text(json.dumps(sorted(self._delivered)))
        os.replace(tmp, self.out_dir / DELIVERED)

    async def _deliver(self, chunk: Chunk) -> None:
        if chunk.index in self._delivered:
            return
        try:
            await self.on_chunk(chunk)
        except Exception:  # left undelivered: the next Recorder on this directory retries it
            log.exception("on_chunk failed for chunk %d", chunk.index)
            return
        self._delivered.add(chunk.index)
        self._save_delivered()
        self._count += 1

    def _recover(self) -> list[Chunk]:
        """Complete chunks so far; incomplete chunk files are deleted."""
        chunks = recorded_chunks(self.out_dir)
        complete = {c.index for c in chunks}
        for path in self.out_dir.glob("chunk_*.ts"):
            match = _CHUNK.fullmatch(path.name)
            if match and int(match.group(1)) not in complete:
                path.unlink()
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._delivered = {int(i) for i in json.loads((self.out_dir / DELIVERED).read_text())}
        return chunks

    def _command(self, start: int, list_path: Path) -> list[str]:
        # default stream selection: the best video + audio (a Kick master playlist has one program per rendition)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "warning", "-nostats", "-progress", "pipe:1", "-y"]
        cmd += ["-i", self.url, "-c", "copy", "-f", "segment", "-segment_time", f"{self.chunk_s:g}"]
        cmd += ["-reset_timestamps", "1", "-segment_format", "mpegts", "-segment_list", str(list_path)]
        cmd += ["-segment_list_type", "csv", "-segment_start_number", str(start)]
        return [*cmd, str(self.out_dir / "chunk_%05d.ts")]

    async def _read_progress(self, stream: asyncio.StreamReader) -> None:
        """Notes when ffmpeg's output time last advanced (from its -progress key=value lines)."""
        last = b""
        async for line in stream:
            if line.startswith(b"out_time_us=") and line != last:
                last = line
                self._progress_at = time.monotonic()

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.stderr_tail = (self.stderr_tail + line.decode(errors="replace"))[-2000:]

    async def run(self) -> int:
        """Record until the stream ends, ffmpeg exits or stalls, or stop(); returns the chunks delivered by this
        run (including complete chunks a previous run left undelivered)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        done = self._recover()
        for chunk in done:
            await self._deliver(chunk)
        if self._stopping:
            return self._count
        start, offset = (done[-1].index + 1, done[-1].end_s) if done else (0, 0.0)
        list_path = self.out_dir / f"segments_{start:05d}.csv"
        list_path.unlink(missing_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *self._command(start, list_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        readers = [asyncio.create_task(self._read_progress(proc.stdout)), asyncio.create_task(self._drain(proc.stderr))]
        self._progress_at = time.monotonic()
        seen = 0
        stop_sent: float | None = None
        try:
            while True:
                exited = proc.returncode is not None
                rows = _rows(list_path)
                for chunk in _chunks_of(self.out_dir, rows, offset)[seen:]:
                    await self._deliver(chunk)
                seen = max(seen, len(rows))
                if exited:
                    break
                now = time.monotonic()
                if self._stopping and stop_sent is None:
                    stop_sent = now
                    with contextlib.suppress(OSError):
                        proc.stdin.write(b"q")
                        await proc.stdin.drain()
                elif stop_sent is not None and now - stop_sent > STOP_GRACE_S:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGINT if now - stop_sent < 2 * STOP_GRACE_S else signal.SIGKILL)
                elif stop_sent is None and now - self._progress_at > self.stall_timeout_s:
                    log.warning("ffmpeg made no progress for %.0f s on %s: killing it", self.stall_timeout_s, self.url)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), timeout=0.25)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        self.returncode = proc.returncode
        if proc.returncode != 0 and not self._stopping:
            log.warning("ffmpeg exited %s recording %s: %s", proc.returncode, self.url, self.stderr_tail[-400:])
        return self._count
