"""Runs the backend-neutral datastore conformance suite over every built-in backend.

PostgreSQL runs against a throwaway server started from the Debian binaries (each store in its
own schema); it is skipped, with the reason, only when no server binaries exist on the machine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.postgres import new_store_url, shared_server, skip_reason
from zanzi.store.base import Datastore
from zanzi.store.conformance import DatastoreConformance
from zanzi.store.registry import open_datastore


@pytest.fixture(
    params=["memory", "sqlite", "sqlite-memory", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Datastore]:
    """Opens a new, empty datastore of the parametrized backend."""
    counter = itertools.count()
    if request.param == "postgresql":
        reason = skip_reason()
        if reason is not None:
            pytest.skip(reason)
        server = shared_server()

    def make(**options: Any) -> Datastore:
        if request.param == "memory":
            return open_datastore("memory://", **options)
        if request.param == "sqlite-memory":
            return open_datastore("sqlite://:memory:", **options)
        if request.param == "postgresql":
            return open_datastore(new_store_url(server), migrate=True, pool_min_size=0, **options)
        return open_datastore(f"sqlite:///{tmp_path}/store-{next(counter)}.db", **options)

    return make


class TestDatastore(DatastoreConformance):
    """Every built-in backend passes the whole suite; none declares an exception."""
