"""Fixtures of the PostgreSQL tests: one throwaway server per test session (started from the
Debian binaries; every test here is skipped, with the reason, when they are missing) and a new,
empty, migrated datastore per test, each in its own schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.postgres import PostgresServer, new_store_url, shared_server, skip_reason
from zanzi.store.sql.postgres import PostgresDatastore, open_postgres

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg() -> PostgresServer:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return shared_server()


@pytest.fixture
def url(pg: PostgresServer) -> str:
    """The URL of a new, empty schema (not migrated)."""
    return new_store_url(pg)


@pytest.fixture
def open_store(url: str) -> Iterator[Callable[..., PostgresDatastore]]:
    """Open datastores on ``url`` (migrated on first open); all are closed afterwards."""
    opened: list[PostgresDatastore] = []

    def make(target: str | None = None, **options: Any) -> PostgresDatastore:
        options.setdefault("migrate", True)
        options.setdefault("pool_min_size", 0)
        store = open_postgres(target or url, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def ds(open_store: Callable[..., PostgresDatastore]) -> PostgresDatastore:
    return open_store()
