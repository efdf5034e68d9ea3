"""Prometheus metrics of the server: requests (count, latency, errors) by method and code, for
gRPC and the HTTP gateway, and datastore timings through :class:`ObservedDatastore`.

With several worker processes, prometheus_client's multiprocess mode is used: the supervisor
sets ``PROMETHEUS_MULTIPROC_DIR`` before it starts the workers, each worker writes its samples
there, and the supervisor's ``/metrics`` sums them (:func:`serve_metrics`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from zanzi.model import Relationship
from zanzi.store.base import (
    ChangeSet,
    Datastore,
    Reader,
    RelationshipKey,
    RelationshipQuery,
    Revision,
    Writer,
)

__all__ = [
    "DATASTORE_SECONDS",
    "GRPC_ERRORS",
    "GRPC_REQUESTS",
    "GRPC_SECONDS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "ObservedDatastore",
    "serve_metrics",
]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_REQUESTS = Counter(
    "zanzi_grpc_requests_total", "gRPC requests handled, by method and status code.", ["method", "code"]
)
GRPC_ERRORS = Counter(
    "zanzi_grpc_errors_total", "gRPC requests that ended with a status other than OK.", ["method", "code"]
)
GRPC_SECONDS = Histogram(
    "zanzi_grpc_request_duration_seconds",
    "Time to handle a gRPC request (whole stream for streaming calls), by method.",
    ["method"],
    buckets=_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "zanzi_http_requests_total", "HTTP gateway requests, by path and HTTP status.", ["path", "status"]
)
HTTP_SECONDS = Histogram(
    "zanzi_http_request_duration_seconds",
    "Time to handle an HTTP gateway request, by path.",
    ["path"],
    buckets=_BUCKETS,
)
DATASTORE_SECONDS = Histogram(
    "zanzi_datastore_operation_duration_seconds",
    "Time spent in the datastore, by operation (query: time inside the store while rows are read).",
    ["operation"],
    buckets=_BUCKETS,
)


def serve_metrics(host: str, port: int, *, multiprocess_dir: str | None = None) -> Any:
    """Serve ``/metrics`` on ``host:port`` in a background thread; with ``multiprocess_dir``,
    the sum of every worker's samples. Returns the server (``shutdown()`` stops it)."""
    registry = None
    if multiprocess_dir is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    if registry is None:
        server, _thread = start_http_server(port, addr=host)
    else:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_OPERATIONS: dict[str, Any] = {}


def _histogram(operation: str) -> Any:
    """The histogram child of ``operation`` (``labels()`` costs more than the observation)."""
    child = _OPERATIONS.get(operation)
    if child is None:
        child = _OPERATIONS.setdefault(operation, DATASTORE_SECONDS.labels(operation))
    return child


@contextlib.contextmanager
def _timed(operation: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        _histogram(operation).observe(time.perf_counter() - start)


class ObservedReader(Reader):
    """A reader that times its queries (only the time spent inside the store)."""

    def __init__(self, inner: Reader) -> None:
        self._inner = inner
        self.revision = inner.revision

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        inner = self._inner.query(q, limit=limit, after=after, ordered=ordered)
        spent = 0.0
        clock = time.perf_counter
        try:
            while True:
                start = clock()
                try:
                    rel = next(inner)
                except StopIteration:
                    spent += clock() - start
                    return
                spent += clock() - start
                yield rel
        finally:
            _histogram("query").observe(spent)

    def read_schema(self) -> str | None:
        with _timed("read_schema"):
            return self._inner.read_schema()

    def exists(self, q: RelationshipQuery) -> bool:
        with _timed("exists"):
            return self._inner.exists(q)


class ObservedDatastore(Datastore):
    """Delegates every call to ``inner``, timing the ones a request waits for."""

    def __init__(self, inner: Datastore) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.gc_window = inner.gc_window

    @property
    def datastore_id(self) -> str:
        return self.inner.datastore_id

    @property
    def token_secret(self) -> bytes:
        return self.inner.token_secret

    def head_revision(self) -> Revision:
        with _timed("head_revision"):
            return self.inner.head_revision()

    def parse_revision(self, text: str) -> Revision:
        return self.inner.parse_revision(text)

    def check_revision(self, revision: Revision) -> None:
        with _timed("check_revision"):
            self.inner.check_revision(revision)

    def snapshot(self, revision: Revision, *, now: datetime | None = None) -> Reader:
        return ObservedReader(self.inner.snapshot(revision, now=now))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        with _timed("transaction"), self.inner.transaction() as tx:
            yield tx

    def changes(self, after: Revision, *, limit: int | None = None) -> Iterator[ChangeSet]:
        return self.inner.changes(after, limit=limit)

    def wait_for_change(self, after: Revision, timeout: float) -> bool:
        return self.inner.wait_for_change(after, timeout)

    def garbage_collect(self, *, now: datetime | None = None) -> int:
        with _timed("garbage_collect"):
            return self.inner.garbage_collect(now=now)

    def ready(self) -> bool:
        return self.inner.ready()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # backend extras (paths, options...) stay reachable
        return getattr(self.inner, name)
