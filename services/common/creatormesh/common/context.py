"""Trace and request ids for the current call or event (W3C trace context).

The server interceptor and the event bus set them from incoming metadata or
headers; logs, outgoing gRPC calls and published events read them, so one id
follows a request across the mesh.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """One request's ids: W3C trace id and the current span id, plus a request id."""

    trace_id: str
    span_id: str
    request_id: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"

    def child(self) -> TraceContext:
        """A new span in the same trace (for an outgoing call or a published event)."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.request_id)


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("creatormesh_trace", default=None)


def new_trace(request_id: str | None = None) -> TraceContext:
    trace_id = secrets.token_hex(16)
    return TraceContext(trace_id, secrets.token_hex(8), request_id or trace_id[:16])


def from_traceparent(traceparent: str | None, request_id: str | None = None) -> TraceContext:
    """Continue the trace in ``traceparent`` (a new span), or start one if it is absent or malformed."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match or match.group(1) == "0" * 32:
        return new_trace(request_id)
    trace_id = match.group(1)
    return TraceContext(trace_id, secrets.token_hex(8), request_id or trace_id[:16])


def current() -> TraceContext | None:
    return _current.get()


def current_or_new() -> TraceContext:
    return _current.get() or new_trace()


@contextmanager
def use(ctx: TraceContext) -> Iterator[TraceContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
