from __future__ import annotations

import json
import logging

from creatormesh.common import context
from creatormesh.common.logs import JsonFormatter


def test_traceparent_is_continued_with_a_new_span() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ctx = context.from_traceparent(parent, "req-1")
    assert ctx.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert ctx.span_id != "b7ad6b7169203331" and ctx.request_id == "req-1"
    assert ctx.traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c-")


def test_malformed_traceparent_starts_a_new_trace() -> None:
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01"):
        ctx = context.from_traceparent(bad)
        assert len(ctx.trace_id) == 32 and ctx.trace_id != "0" * 32


def test_json_log_lines_carry_service_and_trace_ids() -> None:
    formatter = JsonFormatter("ranking", "staging")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.user_id = "u1"
    trace = context.new_trace("req-7")
    with context.use(trace):
        line = json.loads(formatter.format(record))
    assert line["msg"] == "hello world" and line["service"] == "ranking" and line["env"] == "staging"
    assert line["trace_id"] == trace.trace_id and line["request_id"] == "req-7" and line["user_id"] == "u1"
    assert "trace_id" not in json.loads(formatter.format(record))


def test_exceptions_are_logged_with_the_traceback() -> None:
    formatter = JsonFormatter("s", "local")
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: bad" in json.loads(formatter.format(record))["exc"]
