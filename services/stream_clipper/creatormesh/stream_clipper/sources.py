"""Sources of a job: a local path, file://, http(s):// (downloaded) or an object-store URI, and what is in them."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import av
import httpx

from creatormesh.common.storage import Storage, StorageError, fetch_local


class SourceError(RuntimeError):
    """The source cannot be read (missing file, HTTP error, not a media file)."""


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    has_video: bool
    has_audio: bool


def local_path(uri: str) -> Path | None:
    """The local path of a plain path or file:// URI; None for remote URIs."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive letter)
        return Path(uri)
    return None


async def fetch_source(uri: str, work_dir: Path, storage: Storage | None = None, *, timeout_s: float = 600.0) -> Path:
    """A local file holding the source: local paths as they are, http(s) downloaded, s3:// fetched."""
    path = local_path(uri)
    if path is not None:
        if not await asyncio.to_thread(path.is_file):
            raise SourceError(f"source {uri} is not a readable file")
        return path
    scheme = urlparse(uri).scheme
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    if scheme in ("http", "https"):
        return await _download(uri, work_dir, timeout_s)
    try:
        return await asyncio.to_thread(fetch_local, uri, work_dir, storage)
    except StorageError as exc:
        raise SourceError(str(exc)) from exc


async def _download(url: str, work_dir: Path, timeout_s: float) -> Path:
    name = Path(urlparse(url).path).name or "source"
    out = work_dir / name
    partial = work_dir / f".{name}.partial"
    try:
        async with (
            httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise SourceError(f"GET {url}: HTTP {response.status_code}")
            with partial.open("wb") as fh:
                async for block in response.aiter_bytes(1 << 20):
                    fh.write(block)
        os.replace(partial, out)
    except httpx.HTTPError as exc:
        raise SourceError(f"GET {url}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return out


def probe(path: Path) -> MediaInfo:
    """Duration and streams of a media file (PyAV)."""
    try:
        with av.open(str(path)) as container:
            has_video = any(s.type == "video" for s in container.streams)
            has_audio = any(s.type == "audio" for s in container.streams)
            duration = container.duration / 1_000_000 if container.duration else 0.0
            if not duration:
                stream = next(iter(container.streams), None)
                if stream is not None and stream.duration and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"{path.name} is not a readable media file: {exc}") from exc
    if not has_audio:
        raise SourceError(f"{path.name} has no audio stream: highlights are found from the audio")
    return MediaInfo(duration_s=float(duration), has_video=has_video, has_audio=has_audio)
