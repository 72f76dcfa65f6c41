"""A local fake of TikTok's Content Posting API (threaded http.server on 127.0.0.1) with failure switches.

Implements POST /v2/oauth/token/, /v2/post/publish/creator_info/query/, /v2/post/publish/video/init/,
/v2/post/publish/status/fetch/ and PUT /upload/?upload_id=... with the documented response shapes.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


@dataclass
class Chunk:
    """One received PUT: its headers and body."""

    upload_id: str
    content_range: str
    content_type: str
    data: bytes


@dataclass
class FakeTikTok:
    """State and switches of the fake; read ``requests``/``chunks``/``inits``/``refreshes`` after a test."""

    client_key: str = "ck-test"
    client_secret: str = "cs-test"
    username: str = "fake_creator"
    valid_tokens: set[str] = field(default_factory=lambda: {"at-1"})
    refresh_tokens: set[str] = field(default_factory=lambda: {"rt-1"})
    rate_limit_init: int = 0  # answer init with 429 rate_limit_exceeded this many times
    retry_after: str = ""  # Retry-After header on 429s
    sandbox: bool = False  # unaudited client: only SELF_ONLY posts allowed
    spam: bool = False  # answer init with spam_risk_too_many_posts
    statuses: list[str] = field(default_factory=lambda: ["PROCESSING_UPLOAD", "PUBLISH_COMPLETE"])
    fail_reason: str = "file_format_check_failed"
    post_id: int = 7300000000000000001
    requests: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    inits: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[dict[str, str]] = field(default_factory=list)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    url: str = ""
    _issued: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        """How many requests hit ``path`` (e.g. "/v2/post/publish/video/init/")."""
        return sum(1 for _, p in self.requests if p == path)

    def issue_token(self) -> tuple[str, str]:
        """A new (access_token, refresh_token) pair that the fake accepts."""
        self._issued += 1
        access, refresh = f"at-{self._issued}", f"rt-{self._issued}"
        self.valid_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return access, refresh


def _envelope(data: dict[str, Any], code: str = "ok", message: str = "") -> dict[str, Any]:
    return {"data": data, "error": {"code": code, "message": message, "log_id": uuid.uuid4().hex}}


def _handler(fake: FakeTikTok) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[7:] in fake.valid_tokens:
                return True
            self._send(401, _envelope({}, "access_token_invalid", "The access token is invalid or not found."))
            return False

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            with fake._lock:
                fake.requests.append(("POST", path))
                raw = self._body()
                if path == "/v2/oauth/token/":
                    self._token(raw)
                elif not self._authorized():
                    return
                elif path == "/v2/post/publish/creator_info/query/":
                    self._send(200, _envelope(self._creator()))
                elif path == "/v2/post/publish/video/init/":
                    self._init(json.loads(raw))
                elif path == "/v2/post/publish/status/fetch/":
                    self._status(json.loads(raw))
                else:
                    self._send(404, _envelope({}, "invalid_params", "unknown path"))

        def _creator(self) -> dict[str, Any]:
            options = ["SELF_ONLY"] if fake.sandbox else ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
            return {
                "creator_avatar_url": "https://example.invalid/a.jpg",
                "creator_username": fake.username,
                "creator_nickname": "Fake Creator",
                "privacy_level_options": options,
                "comment_disabled": False,
                "duet_disabled": False,
                "stitch_disabled": True,
                "max_video_post_duration_sec": 600,
            }

        def _token(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            fake.refreshes.append(form)
            ok_client = form.get("client_key") == fake.client_key and form.get("client_secret") == fake.client_secret
            if form.get("grant_type") != "refresh_token" or not ok_client:
                self._send(400, {"error": "invalid_request", "error_description": "bad client", "log_id": "x"})
            elif form.get("refresh_token") not in fake.refresh_tokens:
                self._send(400, {"error": "invalid_grant", "error_description": "refresh token expired", "log_id": "x"})
            else:
                fake.refresh_tokens.discard(form["refresh_token"])
                access, refresh = fake.issue_token()
                self._send(
                    200,
                    {
                        "access_token": access,
                        "expires_in": 86400,
                        "open_id": "open-1",
                        "refresh_expires_in": 31536000,
                        "refresh_token": refresh,
                        "scope": "user.info.basic,video.publish",
                        "token_type": "Bearer",
                    },
                )

        def _init(self, body: dict[str, Any]) -> None:
            fake.inits.append(body)
            if fake.rate_limit_init > 0:
                fake.rate_limit_init -= 1
                headers = {"Retry-After": fake.retry_after} if fake.retry_after else None
                self._send(429, _envelope({}, "rate_limit_exceeded", "API rate limit exceeded"), headers)
                return
            if fake.spam:
                self._send(403, _envelope({}, "spam_risk_too_many_posts", "daily post cap reached"))
                return
            if fake.sandbox and body["post_info"]["privacy_level"] != "SELF_ONLY":
                msg = "Please review our integration guidelines"
                self._send(403, _envelope({}, "unaudited_client_can_only_post_to_private_accounts", msg))
                return
            source = body["source_info"]
            publish_id = f"v_pub_file~v2-1.{uuid.uuid4().hex[:12]}"
            fake.polls[publish_id] = 0
            if source["source"] == "PULL_FROM_URL":
                self._send(200, _envelope({"publish_id": publish_id}))
                return
            size, chunk, count = source["video_size"], source["chunk_size"], source["total_chunk_count"]
            if count != max(size // chunk, 1) or count < 1:
                self._send(400, _envelope({}, "invalid_params", "total_chunk_count mismatch"))
                return
            upload_id = uuid.uuid4().hex
            fake.uploads[upload_id] = bytearray()
            fake.expected[upload_id] = size
            url = f"{fake.url}/upload/?upload_id={upload_id}&upload_token=tok"
            self._send(200, _envelope({"publish_id": publish_id, "upload_url": url}))

        def _status(self, body: dict[str, Any]) -> None:
            publish_id = body.get("publish_id", "")
            if publish_id not in fake.polls:
                self._send(400, _envelope({}, "invalid_publish_id", "unknown publish_id"))
                return
            index = min(fake.polls[publish_id], len(fake.statuses) - 1)
            fake.polls[publish_id] += 1
            status = fake.statuses[index]
            data: dict[str, Any] = {"status": status, "uploaded_bytes": 0}
            if status == "FAILED":
                data["fail_reason"] = fake.fail_reason
            if status == "PUBLISH_COMPLETE":
                data["publicaly_available_post_id"] = [fake.post_id]
            self._send(200, _envelope(data))

        def do_PUT(self) -> None:
            parts = urlsplit(self.path)
            with fake._lock:
                fake.requests.append(("PUT", parts.path))
                data = self._body()
                upload_id = parse_qs(parts.query).get("upload_id", [""])[0]
                content_range = self.headers.get("Content-Range", "")
                fake.chunks.append(Chunk(upload_id, content_range, self.headers.get("Content-Type", ""), data))
                match = RANGE.match(content_range)
                buffer = fake.uploads.get(upload_id)
                if buffer is None or match is None:
                    self._send(400, _envelope({}, "invalid_params", "bad upload_id or Content-Range"))
                    return
                first, last, total = (int(g) for g in match.groups())
                if first != len(buffer) or last - first + 1 != len(data) or total != fake.expected[upload_id]:
                    self._send(416, _envelope({}, "invalid_params", "chunk out of order or wrong size"))
                    return
                buffer.extend(data)
                self._send(201 if len(buffer) == total else 206, {})

    return Handler


class FakeTikTokServer:
    """Runs a :class:`FakeTikTok` on 127.0.0.1 at a free port; use as a context manager."""

    def __init__(self, fake: FakeTikTok | None = None) -> None:
        self.fake = fake or FakeTikTok()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.fake.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeTikTok:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
