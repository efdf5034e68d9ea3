"""The server interceptor: preshared-key authentication, then one access-log line and the
request metrics for every call.

Authentication is SpiceDB's: clients send ``authorization: Bearer <key>``; no key is
UNAUTHENTICATED, a wrong one PERMISSION_DENIED. Health checking and server reflection are
exempt, so probes and tools work without the key.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from zanzi.api.grpc import metrics
from zanzi.api.grpc.status import abort
from zanzi.errors import PermissionDenied, Unauthenticated, ZanziError

__all__ = ["EXEMPT_PREFIXES", "RequestInterceptor", "check_bearer"]

access_log = logging.getLogger("zanzi.server.access")

#: Methods served without the preshared key.
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def check_bearer(header: str | None, keys: Sequence[str]) -> ZanziError | None:
    """The error for an ``authorization`` header value, or ``None`` if one of ``keys`` matches."""
    if not keys:
        return None
    if not header:
        return Unauthenticated("Request unauthenticated with bearer")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Unauthenticated("Request unauthenticated with bearer")
    secret = token.strip().encode()
    if any(hmac.compare_digest(secret, key.encode()) for key in keys):
        return None
    return PermissionDenied("invalid preshared key")


class RequestInterceptor(grpc.ServerInterceptor):
    """Authenticates, logs and measures every call (exempt methods are neither authenticated nor
    logged at INFO)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        exempt = method.startswith(EXEMPT_PREFIXES)
        failure = None
        if not exempt and self.keys:
            header = next((v for k, v in details.invocation_metadata or () if k == "authorization"), None)
            failure = check_bearer(header if isinstance(header, str) else None, self.keys)
        return _wrap(handler, method.lstrip("/").removeprefix("authzed.api.v1."), failure, exempt)


def _code(context: Any, default: str) -> str:
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - older grpcio: unknown
        return default
    if code is None:
        return default
    return str(code.name) if isinstance(code, grpc.StatusCode) else default


def _record(method: str, code: str, started: float, context: Any, quiet: bool) -> None:
    elapsed = time.perf_counter() - started
    metrics.GRPC_REQUESTS.labels(method, code).inc()
    metrics.GRPC_SECONDS.labels(method).observe(elapsed)
    if code != "OK":
        metrics.GRPC_ERRORS.labels(method, code).inc()
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "request",
        extra={
            "method": method,
            "code": code,
            "duration_ms": round(elapsed * 1000, 3),
            "peer": _peer(context),
            "protocol": "grpc",
        },
    )


def _peer(context: Any) -> str:
    try:
        return str(context.peer())
    except Exception:  # noqa: BLE001
        return ""


def _wrap(handler: Any, method: str, failure: ZanziError | None, quiet: bool) -> Any:
    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "UNKNOWN"
            try:
                if failure is not None:
                    abort(context, failure)
                response = behavior(request, context)
                code = _code(context, "OK")
                return response
            except BaseException:
                code = _code(context, "UNKNOWN")
                raise
            finally:
                _record(method, code, started, context, quiet)

        return wrapped

    def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(request: Any, context: Any) -> Iterator[Any]:
            started = time.perf_counter()
            code = "UNKNOWN"
            try:
                if failure is not None:
                    abort(context, failure)
                yield from behavior(request, context)
                code = _code(context, "OK")
            except GeneratorExit:
                code = "CANCELLED"
                raise
            except BaseException:
                code = _code(context, "UNKNOWN")
                raise
            finally:
                _record(method, code, started, context, quiet)

        return wrapped

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )
