"""The one translation from exceptions to wire statuses, for gRPC and the HTTP gateway alike.

A :class:`~zanzi.errors.ZanziError` becomes the gRPC code that
:func:`zanzi.errors.grpc_status_name` names, with its message, and a ``google.rpc.Status`` whose
details hold a ``google.rpc.ErrorInfo`` (``reason`` = SpiceDB's ErrorReason name,
``domain`` = ``authzed.com``, ``metadata`` = the error's details as strings), as SpiceDB sends
them, so clients that branch on codes and reasons keep working. Anything else is a bug: it is
logged with its traceback and answered INTERNAL with a generic message.

:func:`handler` wraps every servicer method (unary or streaming) with that translation and with
request validation; the servicers themselves only speak the happy path.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from zanzi.api.grpc.validate import validate_request
from zanzi.errors import InternalError, ZanziError, grpc_status_name

__all__ = [
    "DOMAIN",
    "HTTP_STATUS",
    "abort",
    "handler",
    "status_code",
    "to_rpc_status",
]

log = logging.getLogger("zanzi.server")

DOMAIN = "authzed.com"

#: gRPC code -> HTTP status, as grpc-gateway maps them (``runtime.HTTPStatusFromCode``); for
#: every :class:`~zanzi.errors.Code` it agrees with :func:`zanzi.errors.http_status`.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code(value: int) -> grpc.StatusCode:
    """The :class:`grpc.StatusCode` of a numeric code (``google.rpc.Status.code``)."""
    return _BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)


def _public(exc: BaseException) -> ZanziError:
    """The error the client sees: Zanzi's own errors as they are, anything else as a generic
    INTERNAL error (the cause is logged, never sent)."""
    if isinstance(exc, ZanziError) and not isinstance(exc, InternalError):
        return exc
    log.error("internal error", exc_info=exc)
    return InternalError("internal error; the server log has the details")


def to_rpc_status(exc: BaseException) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an exception (a bug becomes a generic INTERNAL)."""
    err = _public(exc)
    code = grpc.StatusCode[grpc_status_name(err)]
    status = status_pb2.Status(code=code.value[0], message=err.message)
    if err.reason is not None:
        info = error_details_pb2.ErrorInfo(
            reason=err.reason,
            domain=DOMAIN,
            metadata={str(k): _text(v) for k, v in err.details.items()},
        )
        detail = AnyProto()
        detail.Pack(info)
        status.details.append(detail)
    return status


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value))
    return str(value)


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with the status of ``exc`` (raises, as ``context.abort`` does)."""
    context.abort_with_status(rpc_status.to_status(to_rpc_status(exc)))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


F = TypeVar("F", bound=Callable[..., Any])


def handler(method: F) -> F:
    """Wrap a servicer method ``(self, request, context)``: validate the request against the
    rules its proto declares, then translate every exception (during the call, or while a
    streamed answer is produced) into the call's status."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Message]:
            try:
                if isinstance(request, Message):
                    validate_request(request)
                yield from method(self, request, context)
            except Exception as exc:
                if _already_aborted(context, exc):
                    raise
                abort(context, exc)

        return streaming  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Message:
        try:
            if isinstance(request, Message):
                validate_request(request)
            return method(self, request, context)  # type: ignore[no-any-return]
        except Exception as exc:
            if _already_aborted(context, exc):
                raise
            abort(context, exc)

    return unary  # type: ignore[return-value]


def _already_aborted(context: grpc.ServicerContext, exc: Exception) -> bool:
    """True for the exception ``context.abort`` raises to unwind the handler."""
    if isinstance(exc, ZanziError):
        return False
    code = getattr(context, "code", None)
    try:
        return callable(code) and code() not in (None, grpc.StatusCode.OK)
    except Exception:  # noqa: BLE001 - an old grpcio without code(): treat as not aborted
        return False
