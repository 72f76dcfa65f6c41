"""The one server interceptor: trace context, metrics, access logs and error mapping.

Handlers are wrapped once per method and cached, so the per-call cost is a
context switch, two metric updates and a clock read.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from creatormesh.common import context, grpc_errors, metrics

log = logging.getLogger("creatormesh.grpc")

_QUIET_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.CANCELLED,
}


class _Call:
    """Per-method metric children and names, resolved once."""

    def __init__(self, full_method: str, kind: str) -> None:
        service, _, method = full_method.lstrip("/").rpartition("/")
        self.service, self.method, self.kind = service, method, kind
        self.started = metrics.GRPC_STARTED.labels(service, method, kind)
        self.latency = metrics.GRPC_LATENCY.labels(service, method, kind)
        self.in_flight = metrics.GRPC_IN_FLIGHT.labels(service, method)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = metrics.GRPC_HANDLED.labels(self.service, self.method, self.kind, code.name)
        return child


def _trace_from(ctx: grpc.aio.ServicerContext[Any, Any]) -> context.TraceContext:
    traceparent = request_id = None
    for key, value in ctx.invocation_metadata() or ():
        if key == "traceparent":
            traceparent = str(value)
        elif key == "x-request-id":
            request_id = str(value)
    return context.from_traceparent(traceparent, request_id)


def _code_of(ctx: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code = ctx.code()
    if code is None:
        return grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)


async def _fail(ctx: grpc.aio.ServicerContext[Any, Any], call: _Call, exc: Exception) -> grpc.StatusCode:
    """Turn an exception into a status on ``ctx`` (aborting the call) and return its code."""
    code, message, details = grpc_errors.status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("%s/%s failed", call.service, call.method, exc_info=exc)
    trailing = (("grpc-status-details-bin", details),) if details else ()
    try:
        await ctx.abort(code, message, trailing_metadata=trailing)
    except grpc.aio.AbortError:
        pass
    return code


class KitServerInterceptor(grpc.aio.ServerInterceptor):
    """Applied to every call of every service in a kit server."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrapped = _wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped


def _wrap(method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    if handler.unary_unary:
        call = _Call(method, "unary")
        return grpc.unary_unary_rpc_method_handler(
            _unary(call, handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        call = _Call(method, "client_stream")
        return grpc.stream_unary_rpc_method_handler(
            _unary(call, handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        call = _Call(method, "server_stream")
        return grpc.unary_stream_rpc_method_handler(
            _streaming(call, handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    call = _Call(method, "bidi_stream")
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        _streaming(call, handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )


def _unary(call: _Call, inner: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def behavior(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token, start = _begin(call, ctx)
        code = grpc.StatusCode.OK
        try:
            response = await inner(request, ctx)
            code = _code_of(ctx)
            return response
        except grpc.aio.AbortError:
            code = _code_of(ctx)
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 — every failure becomes a status, never UNKNOWN
            code = await _fail(ctx, call, exc)
            return None
        finally:
            _finish(call, code, start, token)

    return behavior


def _streaming(call: _Call, inner: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
    async def behavior(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        token, start = _begin(call, ctx)
        code = grpc.StatusCode.OK
        try:
            result = inner(request, ctx)
            if inspect.isawaitable(result):  # handler wrote with ctx.write() and returned
                await result
            else:
                async for item in result:
                    yield item
            code = _code_of(ctx)
        except grpc.aio.AbortError:
            code = _code_of(ctx)
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001
            code = await _fail(ctx, call, exc)
        finally:
            _finish(call, code, start, token)

    return behavior


def _begin(call: _Call, ctx: grpc.aio.ServicerContext[Any, Any]) -> tuple[Any, float]:
    """Enter the caller's trace context and count the call as started and in flight."""
    token = context._current.set(_trace_from(ctx))
    call.started.inc()
    call.in_flight.inc()
    return token, time.perf_counter()


def _finish(call: _Call, code: grpc.StatusCode, start: float, token: Any) -> None:
    elapsed = time.perf_counter() - start
    call.latency.observe(elapsed)
    call.handled(code).inc()
    call.in_flight.dec()
    if code not in _QUIET_CODES:
        log.warning("%s/%s -> %s in %.1f ms", call.service, call.method, code.name, elapsed * 1000)
    elif log.isEnabledFor(logging.DEBUG):
        log.debug("%s/%s -> %s in %.1f ms", call.service, call.method, code.name, elapsed * 1000)
    try:
        context._current.reset(token)
    except ValueError:  # a stream finalised in another context: nothing to restore
        pass
