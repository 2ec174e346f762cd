"""A grpc.aio server interceptor that counts every RPC by method and final status code.

It wraps each handler's behaviour (unary or streaming, coroutine or async generator) and,
when the call ends, reports ``(method, code, seconds)`` to
:meth:`streamprint.metrics.ServerMetrics.rpc_finished`. The code is what the handler set
(``context.abort`` / ``set_code``), ``CANCELLED`` when the call was cancelled (the client
went away), ``UNKNOWN`` for an exception that escaped the handler, else ``OK``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from streamprint.metrics import ServerMetrics

Context = grpc.aio.ServicerContext[Any, Any]
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def code_name(code: object) -> str:
    """``"OK"``, ``"INVALID_ARGUMENT"``, ... from a :class:`grpc.StatusCode`, an int or ``None``."""
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int) and code in _BY_VALUE:
        return _BY_VALUE[code].name
    return "UNKNOWN"


def _final_code(context: Context, exc: BaseException | None) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    try:
        set_code = context.code()
    except Exception:  # pragma: no cover - defensive: never fail a call over metrics
        set_code = None
    if set_code is not None:
        return code_name(set_code)
    return "UNKNOWN" if exc is not None else "OK"


def _release_handler_state(exc: BaseException) -> None:
    """Let go of what a handler held when it ended with ``context.abort``.

    grpc.aio keeps the :class:`grpc.aio.AbortError` that ``abort`` raises in the call's state,
    and the error's traceback holds every handler frame it passed (the request, the stream
    and its session, a chunk of up to the message size limit) and its ``__context__`` the
    error that led to the abort, with that one's frames. The call's state is part of a cycle
    the garbage collector does not free (traceback -> frame -> context -> call state ->
    error), so an aborted call kept its last request and stream: 60 MiB refused chunks
    kept about 2 GB resident. The status is already set when the error reaches here, so
    the error needs neither.
    """
    if isinstance(exc, grpc.aio.AbortError):
        exc.__traceback__ = None
        exc.__context__ = None
        exc.__cause__ = None


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Reports every RPC's method, final status code and duration to :class:`ServerMetrics`."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # type: ignore[return-value]  # unknown method: grpc answers UNIMPLEMENTED
        method = str(handler_call_details.method).lstrip("/")
        kind, behaviour = _behaviour(handler)
        if behaviour is None:
            return handler
        if inspect.isasyncgenfunction(behaviour):
            wrapped: Any = self._wrap_generator(method, behaviour)
        elif inspect.iscoroutinefunction(behaviour):
            wrapped = self._wrap_coroutine(method, behaviour)
        else:  # a synchronous handler: leave it alone
            return handler
        factory = {
            "unary_unary": grpc.unary_unary_rpc_method_handler,
            "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler,
        }[kind]
        new_handler: Handler = factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return new_handler

    def _wrap_coroutine(
        self, method: str, behaviour: Callable[[Any, Context], Awaitable[Any]]
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        metrics = self._metrics

        async def wrapped(request: Any, context: Context) -> Any:
            start = time.monotonic()
            code = None
            try:
                return await behaviour(request, context)
            except BaseException as exc:
                code = _final_code(context, exc)
                _release_handler_state(exc)
                raise
            finally:
                metrics.rpc_finished(method, code or _final_code(context, None), time.monotonic() - start)
                del request, context  # this frame outlives the call in an exception's traceback

        return wrapped

    def _wrap_generator(
        self, method: str, behaviour: Callable[[Any, Context], AsyncIterator[Any]]
    ) -> Callable[[Any, Context], AsyncIterator[Any]]:
        metrics = self._metrics

        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            start = time.monotonic()
            code = None
            try:
                async for response in behaviour(request, context):
                    yield response
            except BaseException as exc:
                code = _final_code(context, exc)
                _release_handler_state(exc)
                raise
            finally:
                metrics.rpc_finished(method, code or _final_code(context, None), time.monotonic() - start)
                del request, context  # this frame outlives the call in an exception's traceback

        return wrapped


def _behaviour(handler: Handler) -> tuple[str, Any]:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behaviour = getattr(handler, kind, None)
        if behaviour is not None:
            return kind, behaviour
    return "", None
