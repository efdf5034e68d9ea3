"""Fixtures, helpers and the shared base class of the conformance suite."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pytest

from zanzi.model import Relationship, Update
from zanzi.store.base import ChangeSet, Datastore, IntRevision, RelationshipQuery, Revision

__all__ = [
    "DATASET",
    "HOUR",
    "ConformanceBase",
    "DatastoreFactory",
    "FakeClock",
    "Q",
    "change_list",
    "read",
    "rel",
    "strings",
    "write",
]

Q = RelationshipQuery
HOUR = timedelta(hours=1)
START = datetime(2030, 1, 1, tzinfo=UTC)


class DatastoreFactory(Protocol):
    """Opens a new, empty datastore."""

    def __call__(
        self, *, gc_window: timedelta = ..., clock: Callable[[], datetime] = ...
    ) -> Datastore: ...  # pragma: no cover - protocol


class FakeClock:
    """A clock the test moves by hand; thread-safe."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


# -- helpers ----------------------------------------------------------------------------------


def rel(text: str) -> Relationship:
    return Relationship.parse(text)


def write(ds: Datastore, *updates: Update | str, schema: str | None = None) -> Revision:
    """Commit one transaction (plain strings are TOUCHes); return its revision."""
    batch = [Update.touch(u) if isinstance(u, str) else u for u in updates]
    with ds.transaction() as tx:
        if batch:
            tx.write(batch)
        if schema is not None:
            tx.write_schema(schema)
    return tx.revision


def strings(rels: Iterable[Relationship]) -> set[str]:
    return {str(r) for r in rels}


def read(
    ds: Datastore,
    q: RelationshipQuery | None = None,
    *,
    at: Revision | None = None,
    now: datetime | None = None,
) -> set[str]:
    snapshot = ds.snapshot(at if at is not None else ds.head_revision(), now=now)
    return strings(snapshot.query(q if q is not None else Q()))


def change_list(changeset: ChangeSet) -> list[tuple[str, str]]:
    return [(c.kind.name, str(c.relationship)) for c in changeset.changes]


DATASET = (
    "doc:one#viewer@user:alice",
    "doc:one#viewer@group:eng#member",
    "doc:one#editor@user:bob",
    "doc:two#viewer@user:*",
    "doc:twenty#owner@user:carol",
    "doc:Two#viewer@user:dave",
    "folder:one#viewer@user:alice",
    "folder:root#parent@folder:one",
    "group:eng#member@user:alice",
    "group:eng#member@group:ops#member",
)


class ConformanceBase:
    """Fixtures and skipping rules shared by every group of conformance tests."""

    #: Test categories this backend does not support yet, with the reason (skips them).
    unsupported: ClassVar[dict[str, str]] = {}

    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def make(self, factory: DatastoreFactory, clock: FakeClock) -> Iterator[Callable[..., Datastore]]:
        """Open stores with options (the suite's clock unless given); close them afterwards."""
        opened: list[Datastore] = []

        def open_store(**options: Any) -> Datastore:
            options.setdefault("clock", clock)
            store = factory(**options)
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def ds(self, make: Callable[..., Datastore]) -> Datastore:
        return make()

    def require(self, ds: Datastore | None, category: str) -> None:
        """Skip unless the backend supports ``category`` (by capability or declaration)."""
        if category in self.unsupported:
            pytest.skip(f"{category}: {self.unsupported[category]}")
        if ds is not None and category == "watch" and not ds.capabilities.watch:
            pytest.skip("the datastore does not support watch (capabilities.watch is False)")

    def future_revision(self, ds: Datastore) -> Revision | None:
        """A revision newer than the head, or ``None`` if the backend cannot make one up
        (then the tests that need one skip). Override for non-integer revisions."""
        head = ds.head_revision()
        return IntRevision(head.value + 1) if isinstance(head, IntRevision) else None
