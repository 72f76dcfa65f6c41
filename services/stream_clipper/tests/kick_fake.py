"""A local fake of the Kick endpoints the monitor uses, on a real HTTP server in a thread.

Implements the OAuth2 token endpoint (client credentials), GET /public/v1/channels?slug=..., the unofficial
playback endpoint /api/v2/channels/{slug}/livestream, and a *live* HLS stream per channel: a playlist over real
1 s .ts segments made with ffmpeg that reveals segments as wall-clock time passes (sliding window, no ENDLIST
while live) and ends with #EXT-X-ENDLIST when the stream ends (by `end_stream` or when the media runs out).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from creatormesh.common.media import ffmpeg_exe
from creatormesh.common.sample_media import make_video

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
OFFLINE_START = "0001-01-01T00:00:00Z"
WINDOW = 6
"""Segments listed in the live playlist (sliding window)."""


@dataclass(frozen=True)
class HlsMedia:
    """A VOD cut into HLS segments: the directory and each segment's (file name, duration)."""

    directory: Path
    segments: tuple[tuple[str, float], ...]

    @property
    def duration(self) -> float:
        return sum(d for _, d in self.segments)


def build_hls(
    directory: Path, *, seconds: float = 12.0, segment_s: float = 1.0, source: Path | None = None
) -> HlsMedia:
    """A testsrc2 video with audio (320x180, 25 fps), or the given `source` (H.264/AAC at 25 fps, e.g. a
    `speech_vod`), cut into `segment_s` HLS segments with ffmpeg."""
    directory.mkdir(parents=True, exist_ok=True)
    video = source or make_video(directory / "source.mp4", seconds=seconds, size=(320, 180), fps=25)
    gop = str(int(25 * segment_s))
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(video), "-c:v", "libx264"]
    cmd += ["-preset", "ultrafast", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-c:a", "copy"]
    cmd += ["-f", "hls", "-hls_time", str(segment_s), "-hls_list_size", "0"]
    cmd += ["-hls_segment_filename", str(directory / "seg_%04d.ts"), str(directory / "full.m3u8")]
    subprocess.run(cmd, check=True, capture_output=True)
    lines = (directory / "full.m3u8").read_text().splitlines()
    segments: list[tuple[str, float]] = []
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            segments.append((lines[i + 1].strip(), float(line[8:].split(",")[0])))
    return HlsMedia(directory, tuple(segments))


@dataclass
class FakeChannel:
    """One channel: live state and when it went live (monotonic, for the playlist; UTC, for the API)."""

    slug: str
    user_id: int
    live: bool = False
    live_since: float = 0.0
    started_at: str = OFFLINE_START
    ended_after: int | None = None
    """Segments revealed when the stream was ended by hand (None while live or never ended)."""
    frozen_at: int | None = None
    """Segments revealed when the stream stalled (still live, no new segments, no ENDLIST)."""
    title: str = ""
    viewers: int = 0


@dataclass
class FakeKick:
    """State and switches of the fake Kick (thread-safe enough for the tests: one lock around mutations)."""

    media: HlsMedia | None = None
    expires_in: int = 3600
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    token_requests: int = 0
    channel_requests: list[list[str]] = field(default_factory=list)
    unauthorized: int = 0
    _tokens: set[str] = field(default_factory=set)
    _fail: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def add_channel(self, slug: str) -> FakeChannel:
        with self._lock:
            ch = self.channels[slug] = FakeChannel(slug, user_id=1000 + len(self.channels), title=f"{slug} stream")
            return ch

    def go_live(self, slug: str, viewers: int = 42) -> None:
        """Start a new live session: the HLS playlist starts revealing segments now."""
        with self._lock:
            ch = self.channels[slug]
            ch.live, ch.live_since, ch.ended_after, ch.viewers = True, time.monotonic(), None, viewers
            ch.frozen_at = None
            ch.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def end_stream(self, slug: str) -> None:
        """The API reports it offline; the playlist freezes where it is and gets #EXT-X-ENDLIST."""
        with self._lock:
            ch = self.channels[slug]
            ch.ended_after = self._revealed(ch)
            ch.live, ch.started_at, ch.viewers = False, OFFLINE_START, 0

    def freeze(self, slug: str) -> None:
        """The stream stalls: still live, but the playlist gets no new segments (and no ENDLIST)."""
        with self._lock:
            ch = self.channels[slug]
            ch.frozen_at = self._revealed(ch)

    def thaw(self, slug: str) -> None:
        """A frozen stream moves on (at the live edge, as after a network outage)."""
        with self._lock:
            self.channels[slug].frozen_at = None

    def fail(self, count: int, status: int = 500) -> None:
        """The next `count` API requests (token or channels) answer `status`."""
        with self._lock:
            self._fail += [status] * count

    def expire_tokens(self) -> None:
        """Every issued token becomes invalid (the API answers 401)."""
        with self._lock:
            self._tokens.clear()

    def _revealed(self, ch: FakeChannel) -> int:
        if ch.ended_after is not None or ch.frozen_at is not None or self.media is None:
            return ch.ended_after if ch.ended_after is not None else ch.frozen_at or 0
        elapsed, start, count = time.monotonic() - ch.live_since, 0.0, 0
        for _, duration in self.media.segments:
            if start > elapsed:
                break
            start += duration
            count += 1
        return count

    def next_failure(self) -> int | None:
        with self._lock:
            return self._fail.pop(0) if self._fail else None

    def issue_token(self) -> str:
        with self._lock:
            self.token_requests += 1
            token = f"tok-{self.token_requests}"
            self._tokens.add(token)
            return token

    def valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def channel_json(self, slug: str) -> dict[str, Any] | None:
        ch = self.channels.get(slug)
        if ch is None:
            return None
        stream = {"is_live": ch.live, "is_mature": False, "key": "", "language": "en", "start_time": ch.started_at}
        stream |= {"thumbnail": "", "url": "", "viewer_count": ch.viewers}
        category = {"id": 15, "name": "Just Chatting", "thumbnail": ""}
        item = {"banner_picture": "", "broadcaster_user_id": ch.user_id, "category": category, "slug": ch.slug}
        return item | {"channel_description": "", "stream": stream, "stream_title": ch.title}

    def playlist(self, slug: str) -> str | None:
        ch = self.channels.get(slug)
        if ch is None or self.media is None or (not ch.live and ch.ended_after is None):
            return None
        total = len(self.media.segments)
        revealed = self._revealed(ch)
        ended = ch.ended_after is not None or revealed >= total
        first = max(0, revealed - WINDOW)
        target = max(1, round(max(d for _, d in self.media.segments)))
        out = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for name, duration in self.media.segments[first:revealed]:
            out += [f"#EXTINF:{duration:.6f},", name]
        if ended:
            out.append("#EXT-X-ENDLIST")
        return "\n".join(out) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def do_POST(self) -> None:
        kick = self.server.kick
        if urlsplit(self.path).path != "/oauth/token":
            return self._json(404, {"message": "not found"})
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
        if (failure := kick.next_failure()) is not None:
            return self._json(failure, {"message": "failure"})
        ok = form.get("grant_type") == ["client_credentials"] and form.get("client_id") == [CLIENT_ID]
        if not ok or form.get("client_secret") != [CLIENT_SECRET]:
            return self._json(401, {"error": "invalid_client"})
        body = {"access_token": kick.issue_token(), "token_type": "Bearer", "expires_in": kick.expires_in}
        self._json(200, body)

    def do_GET(self) -> None:
        kick, url = self.server.kick, urlsplit(self.path)
        if url.path == "/public/v1/channels":
            return self._channels(kick, parse_qs(url.query).get("slug", []))
        if m := re.fullmatch(r"/api/v2/channels/([\w-]+)/livestream", url.path):
            ch = kick.channels.get(m.group(1))
            if ch is None:
                return self._json(404, {"message": "Channel not found"})
            data = {"playback_url": f"{kick.base_url}/hls/{ch.slug}/index.m3u8"} if ch.live else None
            return self._json(200, {"data": data})
        if m := re.fullmatch(r"/hls/([\w-]+)/index\.m3u8", url.path):
            text = kick.playlist(m.group(1))
            if text is None:
                return self._json(404, {"message": "offline"})
            return self._send(200, text.encode(), "application/vnd.apple.mpegurl")
        if (m := re.fullmatch(r"/hls/([\w-]+)/(seg_\d+\.ts)", url.path)) and kick.media is not None:
            path = kick.media.directory / m.group(2)
            if path.is_file():
                return self._send(200, path.read_bytes(), "video/mp2t")
        self._json(404, {"message": "not found"})

    def _channels(self, kick: FakeKick, slugs: list[str]) -> None:
        if (failure := kick.next_failure()) is not None:
            return self._json(failure, {"message": "failure"})
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not kick.valid(auth[7:]):
            kick.unauthorized += 1
            return self._json(401, {"message": "Unauthorized"})
        if len(slugs) > 50:
            return self._json(400, {"message": "at most 50 slugs"})
        kick.channel_requests.append(slugs)
        data = [c for s in slugs if (c := kick.channel_json(s)) is not None]
        self._json(200, {"data": data, "message": "OK"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    kick: FakeKick


class FakeKickServer:
    """Runs a FakeKick on 127.0.0.1 (random port) in a thread; use as a context manager."""

    def __init__(self, media: HlsMedia | None = None) -> None:
        self.kick = FakeKick(media=media)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.kick = self.kick
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.kick.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def auth_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def playback_api(self) -> str:
        return self.url + "/api/v2/channels/{slug}/livestream"

    def __enter__(self) -> FakeKickServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
