"""Reading gRPC errors the way a SpiceDB client does: status code, message, and the
``google.rpc.ErrorInfo`` in the status details (reason, domain, metadata)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def failure(exc: grpc.RpcError) -> Failure:
    """The code, message and ErrorInfo of a failed call."""
    out = Failure(exc.code(), exc.details() or "")  # type: ignore[attr-defined]
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            out.reason, out.domain, out.metadata = info.reason, info.domain, dict(info.metadata)
    return out


def fails(call: Callable[[], Any]) -> Failure:
    """Run ``call`` (streams are drained) and return how it failed; it must fail."""
    try:
        result = call()
        if (
            hasattr(result, "__iter__")
            and not isinstance(result, str | bytes)
            and not hasattr(result, "ListFields")
        ):
            list(result)
    except grpc.RpcError as exc:
        return failure(exc)
    raise AssertionError("the call succeeded")


def assert_fails(
    call: Callable[[], Any], code: grpc.StatusCode, reason: str | None = None, match: str = ""
) -> Failure:
    f = fails(call)
    assert f.code == code, f"{f.code.name}: {f.message}"
    if reason is not None:
        assert f.reason == reason, f"reason {f.reason} ({f.message})"
        assert f.domain == "authzed.com"
    assert match in f.message, f.message
    return f
