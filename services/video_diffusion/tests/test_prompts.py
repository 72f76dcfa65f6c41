"""Prompt variations: deterministic rewrites, and an OpenAI-compatible endpoint (a local HTTP server here) with a
fallback on every kind of failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from creatormesh.video_diffusion.prompts import PromptVariator, parse_prompts, rewrite, rewrites


class FakeLLM:
    """``POST /v1/chat/completions`` on 127.0.0.1; ``reply`` decides the answer of each call."""

    def __init__(self) -> None:
        self.reply: Any = None
        self.status = 200
        self.delay = 0.0
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if outer.delay:
                    threading.Event().wait(outer.delay)
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": outer.reply}}]})
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.server.shutdown()


def test_rule_rewrites() -> None:
    assert rewrite("a red car.", 0) == "a red car."
    assert rewrite("a red car.", 1) == "a red car, cinematic lighting, shallow depth of field"
    five = rewrites("a red car", 5)
    assert len(set(five)) == 5 and five[0] == "a red car" and all(p.startswith("a red car") for p in five)
    assert rewrites("x", 9)[8].endswith(rewrite("x", 1).split(", ", 1)[1])  # styles wrap around
    assert len(rewrite("y" * 2000, 3)) == 2000


async def test_without_an_endpoint() -> None:
    v = await PromptVariator().variations("a red car", 3)
    assert v.source == "rules" and v.prompts == rewrites("a red car", 3)
    same = await PromptVariator().variations("a red car", 3, vary=False)
    assert same.source == "none" and same.prompts == ["a red car"] * 3
    with pytest.raises(ValueError):
        await PromptVariator().variations("a red car", 0)


async def test_llm_rewrites(llm: FakeLLM) -> None:
    llm.reply = json.dumps({"prompts": ["a red car at dawn", "a red car in the rain", "a red car, drone shot"]})
    variator = PromptVariator(llm.url, "qwen", api_key="k", timeout_s=5)
    v = await variator.variations("a red car", 3)
    await variator.aclose()
    assert v.source == "llm" and v.prompts == ["a red car", "a red car at dawn", "a red car in the rain"]
    body = llm.bodies[0]
    assert body["path"] == "/v1/chat/completions" and body["auth"] == "Bearer k" and body["model"] == "qwen"
    assert "2 variations" in body["messages"][1]["content"]


@pytest.mark.parametrize(
    ("reply", "status", "delay", "error"),
    [
        ("not json", 200, 0.0, "JSONDecodeError"),
        (json.dumps({"prompts": ["only one"]}), 200, 0.0, "asked for 2"),
        (json.dumps({"text": "x"}), 200, 0.0, "no list"),
        ("{}", 500, 0.0, "HTTPStatusError"),
        (json.dumps({"prompts": ["a", "b"]}), 200, 2.0, "Timeout"),
    ],
)
async def test_llm_failures_fall_back(llm: FakeLLM, reply: str, status: int, delay: float, error: str) -> None:
    llm.reply, llm.status, llm.delay = reply, status, delay
    variator = PromptVariator(llm.url, "qwen", timeout_s=0.5)
    v = await variator.variations("a red car", 3)
    await variator.aclose()
    assert v.source == "rules" and v.prompts == rewrites("a red car", 3)
    assert error in v.error


def test_parse_prompts() -> None:
    fenced = '```json\n["one", " two ", ""]\n```'
    assert parse_prompts(fenced, 2) == ["one", "two"]
    with pytest.raises(ValueError):
        parse_prompts('["one", ""]', 2)
