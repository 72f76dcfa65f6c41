"""Chat logs for the chat-velocity score: JSON lines, each with a time in seconds from the source start."""

from __future__ import annotations

import json

from creatormesh.stream_clipper.sources import SourceError, local_path

_TIME_KEYS = ("timestamp", "t", "time", "offset_seconds")


def parse_chat(text: str, where: str = "chat log") -> list[float]:
    """Message times (seconds, sorted) of a JSON-lines chat log; blank lines are skipped."""
    times: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{where} line {number}: not JSON ({exc.msg})") from exc
        value = next((record[k] for k in _TIME_KEYS if isinstance(record, dict) and k in record), None)
        if not isinstance(value, int | float) or value < 0:
            raise SourceError(f"{where} line {number}: needs a non-negative 'timestamp' in seconds")
        times.append(float(value))
    return sorted(times)


def load_chat_times(uri: str) -> list[float]:
    """Times of a chat log at a local path or file:// URI (remote logs are fetched by the caller)."""
    path = local_path(uri)
    if path is None or not path.is_file():
        raise SourceError(f"chat log {uri} is not a readable local file")
    return parse_chat(path.read_text(encoding="utf-8"), str(path.name))
