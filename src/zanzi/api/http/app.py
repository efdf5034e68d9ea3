"""The HTTP/JSON gateway: SpiceDB's grpc-gateway API (same paths, same JSON bodies) on the
standard library's threading HTTP server, calling the same servicer methods as gRPC does.

- ``POST <path>`` with a JSON body (proto3 JSON mapping: ``camelCase`` or proto field names;
  unknown fields ignored) -> the JSON of the response message, every field present, as
  grpc-gateway writes it.
- Streaming answers are newline-delimited ``{"result": {...}}`` objects; an error ends the
  stream with ``{"error": {...}}`` (or, before the first result, is the whole answer with the
  error's HTTP status). Client streaming (ImportBulkRelationships) reads a sequence of JSON
  objects (a JSON array, or objects one after another).
- Errors are ``{"code": <gRPC code>, "message": ..., "details": [ErrorInfo...]}`` with the HTTP
  status grpc-gateway gives that code.
- Auth is the gRPC server's: ``Authorization: Bearer <key>``.
- ``GET /openapi.json`` describes every route; ``GET /healthz`` answers 200 once serving.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2

from zanzi.api.grpc import metrics
from zanzi.api.grpc.interceptors import check_bearer
from zanzi.api.grpc.status import HTTP_STATUS, status_code, to_rpc_status
from zanzi.api.http.routes import Route, openapi_document, routes
from zanzi.errors import InvalidArgument, LimitExceeded, Unavailable

__all__ = ["Gateway", "GatewayServer"]

access_log = logging.getLogger("zanzi.server.access")

_MAX_BODY = 64 * 1024 * 1024
_DETAILS_KEY = "grpc-status-details-bin"


class _Abort(Exception):
    """Raised by the context adapter where gRPC would end the call."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


class _Context:
    """The part of ``grpc.ServicerContext`` the servicers use, for a call made over HTTP."""

    def __init__(
        self, headers: Mapping[str, str], peer: str, connection: socket.socket | None = None
    ) -> None:
        self._headers = headers
        self._peer = peer
        self._connection = connection
        self._code: grpc.StatusCode | None = None
        self.closed = False

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [(k.lower(), v) for k, v in self._headers.items()]

    def peer(self) -> str:
        return self._peer

    def is_active(self) -> bool:
        """False once the client has gone (so a quiet Watch stream ends without writing)."""
        if not self.closed and self._connection is not None:
            try:
                readable, _, _ = select.select([self._connection], [], [], 0)
                if readable and not self._connection.recv(1, socket.MSG_PEEK):
                    self.closed = True
            except (OSError, ValueError):
                self.closed = True
        return not self.closed

    def time_remaining(self) -> float | None:
        return None

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        pass

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        raise _Abort(status_pb2.Status(code=code.value[0], message=details))

    def abort_with_status(self, status: Any) -> None:
        self._code = status.code
        for key, value in status.trailing_metadata or ():
            if key == _DETAILS_KEY:
                raise _Abort(status_pb2.Status.FromString(value))
        raise _Abort(status_pb2.Status(code=status.code.value[0], message=status.details))


def _status_of(exc: BaseException) -> status_pb2.Status:
    if isinstance(exc, _Abort):
        return exc.status
    if isinstance(exc, NotImplementedError):
        return status_pb2.Status(
            code=grpc.StatusCode.UNIMPLEMENTED.value[0], message="Method not implemented"
        )
    return to_rpc_status(exc)


def _to_json(msg: Message) -> Any:
    return json_format.MessageToDict(msg, always_print_fields_with_no_presence=True)


def _read_objects(body: bytes) -> Iterator[Any]:
    """The JSON values of a request body: one object, an array of them, or several in a row."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        value, pos = decoder.raw_decode(text, pos)
        if isinstance(value, list):
            yield from value
        else:
            yield value


class Gateway:
    """Routes HTTP requests to the servicers; one per server process."""

    def __init__(
        self,
        servicers: Mapping[str, object],
        keys: Sequence[str],
        *,
        max_concurrent: int = 256,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.servicers = dict(servicers)
        self.keys = tuple(keys)
        self.ready = ready
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._in_flight = 0
        self._idle = threading.Condition()

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight (at most ``timeout`` seconds)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    # -- one request ------------------------------------------------------------------------

    def handle(self, req: _Handler) -> None:
        path = req.path.split("?", 1)[0]
        started = time.perf_counter()
        status = 500
        try:
            status = self._dispatch(req, path)
        finally:
            elapsed = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(path, str(status)).inc()
            metrics.HTTP_SECONDS.labels(path).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "method": f"{req.command} {path}",
                    "code": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "peer": req.client_address[0],
                    "protocol": "http",
                },
            )
            if self.stopping.is_set():
                req.close_connection = True

    def _dispatch(self, req: _Handler, path: str) -> int:
        if req.command == "GET" and path == "/openapi.json":
            return req.send_json(200, openapi_document())
        if req.command == "GET" and path == "/healthz":
            serving = self.ready() and not self.stopping.is_set()
            return req.send_json(200 if serving else 503, {"status": "SERVING" if serving else "NOT_SERVING"})
        route = routes().get((req.command, path))
        if route is None:
            known = any(p == path for _, p in routes())
            code, message = (
                (grpc.StatusCode.UNIMPLEMENTED, "Method Not Allowed")
                if known
                else (grpc.StatusCode.NOT_FOUND, "Not Found")
            )
            req.discard_body()
            return req.send_json(
                405 if known else 404, {"code": code.value[0], "message": message, "details": []}
            )
        failure = check_bearer(req.headers.get("Authorization"), self.keys)
        if failure is None and self.stopping.is_set():
            failure = Unavailable("the server is shutting down")
        if failure is not None:
            req.discard_body()
            return self._error(req, to_rpc_status(failure))
        if not self._slots.acquire(blocking=False):
            req.discard_body()
            return self._error(req, to_rpc_status(LimitExceeded("too many concurrent requests")))
        with self._idle:
            self._in_flight += 1
        try:
            return self._call(req, route)
        finally:
            self._slots.release()
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _call(self, req: _Handler, route: Route) -> int:
        peer = f"ipv4:{req.client_address[0]}:{req.client_address[1]}"
        context = _Context(dict(req.headers.items()), peer, req.connection)
        method = getattr(self.servicers[route.service], route.method)
        try:
            body = req.read_body()
            if route.client_streaming:
                request: Any = (self._parse_dict(route, value) for value in _read_objects(body))
            else:
                request = self._parse(route, body)
            if not route.server_streaming:
                return req.send_json(200, _to_json(method(request, context)))
            stream: Iterator[Message] = iter(method(request, context))
            first = next(stream, None)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the call's status
            return self._error(req, _status_of(exc), streaming=route.server_streaming)
        return self._stream(req, context, first, stream)

    @staticmethod
    def _parse(route: Route, body: bytes) -> Message:
        msg = route.request()
        try:
            json_format.Parse(body.decode("utf-8") or "{}", msg, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"invalid JSON request body: {exc}") from None
        return msg

    @staticmethod
    def _parse_dict(route: Route, value: Any) -> Message:
        msg = route.request()
        try:
            json_format.ParseDict(value, msg, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise InvalidArgument(f"invalid JSON request body: {exc}") from None
        return msg

    def _error(self, req: _Handler, status: status_pb2.Status, *, streaming: bool = False) -> int:
        """The error answer; a stream that fails before its first result answers with the
        error's status and one ``{"error": ...}`` line, as grpc-gateway does."""
        http = HTTP_STATUS.get(status_code(status.code), 500)
        body = _to_json(status)
        return req.send_json(http, {"error": body} if streaming else body)

    def _stream(
        self, req: _Handler, context: _Context, first: Message | None, rest: Iterator[Message]
    ) -> int:
        req.start_stream()
        try:
            if first is not None:
                req.write_chunk({"result": _to_json(first)})
                for msg in rest:
                    req.write_chunk({"result": _to_json(msg)})
        except OSError:  # the client went away
            context.closed = True
            close = getattr(rest, "close", None)
            if callable(close):
                close()
            req.close_connection = True
            return 200
        except Exception as exc:  # noqa: BLE001 - ends the stream with an error line
            try:
                req.write_chunk({"error": _to_json(_status_of(exc))})
            except OSError:
                req.close_connection = True
                return 200
        try:
            req.end_stream()
        except OSError:
            req.close_connection = True
        return 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer
    server_version = "zanzi"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.gateway.handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.gateway.handle(self)

    do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815 - answered 404/405 by the router

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the gateway logs
        pass

    # -- bodies -----------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            raise InvalidArgument(f"request body larger than {_MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                self.close_connection = True
                raise InvalidArgument(f"request body larger than {_MAX_BODY} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def discard_body(self) -> None:
        try:
            self.read_body()
        except (InvalidArgument, ValueError, OSError):
            self.close_connection = True

    # -- answers ----------------------------------------------------------------------------

    def send_json(self, status: int, value: Any) -> int:
        data = json.dumps(value, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, value: Any) -> None:
        data = json.dumps(value, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class GatewayServer(ThreadingHTTPServer):
    """A threading HTTP server (one thread per connection) for :class:`Gateway`. With
    ``reuse_port``, several worker processes serve the same port."""

    daemon_threads = True  # idle keep-alive connections must not hold shutdown; drain() waits

    def __init__(self, address: tuple[str, int], gateway: Gateway, *, reuse_port: bool = False) -> None:
        self.allow_reuse_port = reuse_port
        self.gateway = gateway
        super().__init__(address, _Handler)
