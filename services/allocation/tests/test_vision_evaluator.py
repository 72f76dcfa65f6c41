"""The vision-LLM evaluator against a real local HTTP server speaking the OpenAI chat format:
parsed answers, the request it sends, and the fallback to the local evaluator on every failure."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image, ImageDraw

from creatormesh.allocation.evaluation import BasicMetrics, Keyframe, LocalEvaluator, StreamInput, VisionLLMEvaluator
from creatormesh.allocation.evaluation.vision import extract_json, image_data_url, parse_reply, truncate_transcript
from creatormesh.common.embeddings import default_embedder
from creatormesh.common.errors import InvalidArgument

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = "qwen2.5-vl-test"
GOOD = {
    "content_value": 0.8,
    "visual_quality": 0.7,
    "host_performance": 0.9,
    "overall_rating": 0.75,
    "reasons": {"content_value": "clear baking tutorial", "visual_quality": "sharp, bright frames", "extra": "ok"},
}


@dataclass
class Behaviour:
    """What the fake endpoint does next, and what it received."""

    mode: str = "valid"
    sleep_seconds: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def chat_reply(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}).encode()


REPLIES: dict[str, tuple[int, bytes]] = {
    "valid": (200, chat_reply(json.dumps(GOOD))),
    "fenced": (200, chat_reply(f"Here it is:\n```json\n{json.dumps(GOOD, indent=2)}\n```\nHope it helps.")),
    "garbage": (200, chat_reply("The stream looks great, I'd give it an 8 out of 10!")),
    "out_of_range": (200, chat_reply(json.dumps({**GOOD, "content_value": 1.7}))),
    "missing": (200, chat_reply(json.dumps({k: v for k, v in GOOD.items() if k != "host_performance"}))),
    "boolean": (200, chat_reply(json.dumps({**GOOD, "visual_quality": True}))),
    "string_score": (200, chat_reply(json.dumps({**GOOD, "overall_rating": "0.7"}))),
    "not_object": (200, chat_reply("[0.1, 0.2, 0.3, 0.4]")),
    "no_choices": (200, json.dumps({"error": "busy"}).encode()),
    "html": (200, b"<html>proxy says hello</html>"),
    "http500": (500, json.dumps({"error": {"message": "CUDA out of memory"}}).encode()),
    "http404": (404, b'{"detail": "model not found"}'),
}  # fmt: skip


class Endpoint:
    """``POST /v1/chat/completions`` on 127.0.0.1 in a thread."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                b = endpoint.behaviour
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                b.paths.append(self.path)
                b.headers.append(dict(self.headers))
                b.requests.append(json.loads(body))
                if b.sleep_seconds:
                    time.sleep(b.sleep_seconds)
                if self.path != "/v1/chat/completions":
                    status, reply = 404, b"{}"
                else:
                    status, reply = REPLIES[b.mode]
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def behaviour(endpoint: Endpoint) -> Behaviour:
    endpoint.behaviour = Behaviour()
    return endpoint.behaviour


@pytest.fixture(scope="module")
def local() -> LocalEvaluator:
    return LocalEvaluator(default_embedder())  # the process-wide embedder, shared with test_evaluation


@pytest.fixture
async def vision(endpoint: Endpoint, local: LocalEvaluator) -> AsyncIterator[VisionLLMEvaluator]:
    evaluator = VisionLLMEvaluator(
        endpoint.base_url, MODEL, local, api_key="sk-test", timeout_seconds=1.0, max_images=3
    )
    yield evaluator
    await evaluator.aclose()


def frame(i: int, size: tuple[int, int] = (320, 180)) -> bytes:
    image = Image.new("RGB", size, (30 + 40 * i, 120, 200 - 30 * i))
    ImageDraw.Draw(image).rectangle((10 + 20 * i, 20, 80 + 20 * i, 90), fill=(250, 220, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


STREAM = StreamInput(
    stream_id="stream_001",
    keyframes=tuple(Keyframe(300.0 * (i + 1), frame(i)) for i in range(5)),
    transcript="Hello chat! Today we bake sourdough bread. Any questions? Thanks for the follow!",
    metrics=BasicMetrics(
        duration_minutes=90, peak_viewers=1500, average_viewers=1200, total_comments=3200, total_likes=8500
    ),
)


async def test_valid_reply_is_parsed_and_request_is_well_formed(
    vision: VisionLLMEvaluator, behaviour: Behaviour
) -> None:
    result = await vision.evaluate(STREAM)
    assert (result.content_value, result.visual_quality, result.host_performance, result.overall_rating) == (
        0.8,
        0.7,
        0.9,
        0.75,
    )
    assert result.evaluator == "vision_llm" and not result.fallback and result.fallback_reason == ""
    assert result.version == MODEL and result.stream_id == "stream_001"
    reasons = {(r.dimension, r.text) for r in result.reasons}
    assert ("content_value", "clear baking tutorial") in reasons and ("", "ok") in reasons
    assert result.measurements["images_sent"] == 3

    assert behaviour.paths == ["/v1/chat/completions"]
    request = behaviour.requests[0]
    assert request["model"] == MODEL and request["temperature"] == 0
    assert request["response_format"] == {"type": "json_object"}
    assert behaviour.headers[0]["Authorization"] == "Bearer sk-test"
    system, user = request["messages"]
    assert system["role"] == "system" and "content_value" in system["content"] and "JSON" in system["content"]
    parts = user["content"]
    texts = "\n".join(p["text"] for p in parts if p["type"] == "text")
    assert (
        "Today we bake sourdough bread" in texts and "Peak viewers: 1500" in texts and "Total comments: 3200" in texts
    )
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 3  # max_images, spread over the 5 keyframes: first, middle, last
    assert "Keyframe at 300 s:" in texts and "Keyframe at 900 s:" in texts and "Keyframe at 1500 s:" in texts
    for url, index in zip(urls, (0, 2, 4), strict=True):
        prefix = "data:image/png;base64,"
        assert url.startswith(prefix)
        assert base64.b64decode(url[len(prefix) :]) == STREAM.keyframes[index].image_data
        Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))).verify()


async def test_fenced_json_is_accepted(vision: VisionLLMEvaluator, behaviour: Behaviour) -> None:
    behaviour.mode = "fenced"
    result = await vision.evaluate(STREAM)
    assert not result.fallback and result.overall_rating == 0.75


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "no JSON object"),
        ("out_of_range", "content_value=1.7 is outside [0, 1]"),
        ("missing", "host_performance is missing"),
        ("boolean", "visual_quality is missing or not a number"),
        ("string_score", "overall_rating is missing or not a number"),
        ("not_object", "not an object"),
        ("no_choices", "no choices[0].message.content"),
        ("html", "not JSON"),
        ("http500", "HTTP 500"),
        ("http404", "HTTP 404"),
    ],
)
async def test_unusable_answers_fall_back_to_local(
    vision: VisionLLMEvaluator, behaviour: Behaviour, local: LocalEvaluator, mode: str, reason: str
) -> None:
    behaviour.mode = mode
    result = await vision.evaluate(STREAM)
    assert result.fallback and result.evaluator == "local"
    assert reason in result.fallback_reason
    expected = await local.evaluate(STREAM)
    assert result.scores() == expected.scores() and result.measurements == expected.measurements
    assert len(behaviour.requests) == 1


async def test_timeout_falls_back(vision: VisionLLMEvaluator, behaviour: Behaviour) -> None:
    behaviour.sleep_seconds = 3.0
    started = time.perf_counter()
    result = await vision.evaluate(STREAM)
    assert result.fallback and result.fallback_reason == "vision endpoint timed out after 1 s"
    assert time.perf_counter() - started < 2.9  # gave up at the timeout, not when the server answered


async def test_connection_error_falls_back(local: LocalEvaluator) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    evaluator = VisionLLMEvaluator(f"http://127.0.0.1:{port}/v1/", MODEL, local, timeout_seconds=2.0)
    try:
        result = await evaluator.evaluate(STREAM)
    finally:
        await evaluator.aclose()
    assert result.fallback and result.fallback_reason.startswith("vision endpoint unreachable: ConnectError")


async def test_large_keyframes_are_downscaled_and_transcript_truncated(
    endpoint: Endpoint, behaviour: Behaviour, local: LocalEvaluator
) -> None:
    evaluator = VisionLLMEvaluator(endpoint.base_url + "/", MODEL, local, timeout_seconds=5.0)
    big = StreamInput("big", (Keyframe(0.0, frame(1, (1920, 1080))),), "word " * 10_000, STREAM.metrics)
    try:
        result = await evaluator.evaluate(big)
    finally:
        await evaluator.aclose()
    assert not result.fallback and result.measurements["images_sent"] == 1
    assert "Authorization" not in behaviour.headers[0]
    parts = behaviour.requests[0]["messages"][1]["content"]
    (url,) = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (1024, 576)
    transcript = next(p["text"] for p in parts if p["text"].startswith("Transcript:"))
    assert len(transcript) < 12_200 and "characters omitted" in transcript


async def test_invalid_input_raises_without_calling_the_endpoint(
    vision: VisionLLMEvaluator, behaviour: Behaviour
) -> None:
    bad = StreamInput("bad", (Keyframe(0.0, frame(0)), Keyframe(1.0, b"\x89PNG broken")), "", STREAM.metrics)
    with pytest.raises(InvalidArgument) as info:
        await vision.evaluate(bad)
    assert info.value.field == "keyframes[1].image_data"
    assert behaviour.requests == []


def test_unusual_modes_are_sent_as_rgb_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (64, 48), (0, 120, 200, 0)).save(buffer, "JPEG")
    image = Image.open(io.BytesIO(buffer.getvalue()))
    url = image_data_url(buffer.getvalue(), image)
    assert url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).mode == "RGB"


def test_parsing_helpers() -> None:
    assert extract_json('noise {"a": 1} noise') == {"a": 1}
    assert extract_json('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    body = {"choices": [{"message": {"content": [{"type": "text", "text": json.dumps(GOOD)}]}}]}
    scores, reasons = parse_reply(body)
    assert scores["host_performance"] == 0.9 and len(reasons) == 3
    assert truncate_transcript("short") == "short"
