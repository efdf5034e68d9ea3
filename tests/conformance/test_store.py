"""Runs the backend-neutral datastore conformance suite over every built-in backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zanzi.store.base import Datastore
from zanzi.store.conformance import DatastoreConformance
from zanzi.store.registry import open_datastore


@pytest.fixture(params=["memory", "sqlite", "sqlite-memory"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Datastore]:
    """Opens a new, empty datastore of the parametrized backend."""
    counter = itertools.count()

    def make(**options: Any) -> Datastore:
        if request.param == "memory":
            return open_datastore("memory://", **options)
        if request.param == "sqlite-memory":
            return open_datastore("sqlite://:memory:", **options)
        return open_datastore(f"sqlite:///{tmp_path}/store-{next(counter)}.db", **options)

    return make


class TestDatastore(DatastoreConformance):
    """Every built-in backend passes the whole suite; none declares an exception."""
