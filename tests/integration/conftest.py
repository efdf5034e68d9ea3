"""Servers for the integration tests: real ``zanzi serve`` processes on loopback.

``server`` is shared by the whole session (gRPC, HTTP gateway and metrics on one SQLite file,
one worker); tests that need their own process (several workers, TLS, shutdown, crashes) start
one with :class:`support.zanzi_server.ZanziServer`. Tests that change the schema call
:func:`support.wire.reset` first.

``pg`` is the throwaway PostgreSQL server of the session (tests that use it skip, with the
reason, when the server binaries are missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.postgres import PostgresServer, shared_server, skip_reason
from support.wire import GrpcWire, HttpWire
from support.zanzi_server import ZanziServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZanziServer]:
    directory = tmp_path_factory.mktemp("zanzi-serve")
    with ZanziServer(directory, http=True, metrics=True) as running:
        yield running


@pytest.fixture(scope="session")
def client(server: ZanziServer) -> Any:
    return server.client()


@pytest.fixture(scope="session")
def grpc_wire(client: Any) -> GrpcWire:
    return GrpcWire(client)


@pytest.fixture(scope="session")
def http_wire(server: ZanziServer) -> HttpWire:
    assert server.http_addr is not None
    return HttpWire(f"http://{server.http_addr}", server.key)


@pytest.fixture(scope="session")
def pg() -> PostgresServer:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return shared_server()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
