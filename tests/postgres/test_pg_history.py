"""Garbage collection on PostgreSQL: bounded batches, and never a broken read at a revision
inside the window, even while writers and readers run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from zanzi.model import Update
from zanzi.store.base import IntRevision, RelationshipQuery
from zanzi.store.conformance import FakeClock
from zanzi.store.sql import postgres_history
from zanzi.store.sql.postgres import PostgresDatastore

Q = RelationshipQuery
HOUR = timedelta(hours=1)


def contents(ds: PostgresDatastore, revision: IntRevision) -> set[str]:
    return {str(r) for r in ds.snapshot(revision).query(Q(resource_type="doc"))}


def test_gc_runs_in_bounded_batches(
    open_store: Callable[..., PostgresDatastore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    ds = open_store(clock=clock, gc_window=HOUR)
    for i in range(5):
        with ds.transaction() as tx:
            tx.write([Update.touch(f'doc:d{j}#viewer@user:u{j}[cav:{{"v":{i}}}]') for j in range(10)])
    clock.advance(2 * HOUR)
    with ds.transaction() as last:
        last.write([Update.touch("doc:new#viewer@user:x")])
    monkeypatch.setattr(postgres_history, "GC_BATCH", 7)
    statements: list[int] = []
    original = ds._gc_write

    def counting(fn):  # type: ignore[no-untyped-def]
        result = original(fn)
        statements.append(result if isinstance(result, int) else -1)
        return result

    monkeypatch.setattr(ds, "_gc_write", counting)
    before = contents(ds, last.revision)
    removed = ds.garbage_collect(now=clock())
    # 40 replaced rows and 5 transaction records: each statement removed at most 7 rows.
    assert removed == 40 + 5
    assert max(statements) <= 7 and len(statements) >= 45 // 7
    assert contents(ds, last.revision) == before
    assert ds.garbage_collect(now=clock()) == 0


def test_gc_never_breaks_a_read_inside_the_window(open_store: Callable[..., PostgresDatastore]) -> None:
    """Writers replace rows while GC runs repeatedly; readers at every revision still inside the
    window must read exactly what they read before."""
    clock = FakeClock()
    ds = open_store(clock=clock, gc_window=HOUR)
    old = []
    for i in range(6):
        with ds.transaction() as tx:
            tx.write([Update.touch(f"doc:d{j}#viewer@user:u{i}") for j in range(5)] +
                     [Update.delete(f"doc:d{j}#viewer@user:u{i - 1}") for j in range(5)])  # fmt: skip
        old.append(tx.revision)
    clock.advance(2 * HOUR)  # old[:-1] leave the window; old[-1] was current at its start
    kept: dict[IntRevision, set[str]] = {old[-1]: contents(ds, old[-1])}
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            for i in range(30):
                with ds.transaction() as tx:
                    tx.write(
                        [
                            Update.touch(f"doc:w{i % 5}#viewer@user:v{i}"),
                            Update.delete(f"doc:w{i % 5}#viewer@user:v{i - 5}"),
                        ]
                    )
                kept[tx.revision] = contents(ds, tx.revision)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def collect() -> None:
        try:
            while not stop.is_set():
                ds.garbage_collect(now=clock())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                for revision, expected in list(kept.items()):
                    ds.check_revision(revision)
                    assert contents(ds, revision) == expected, revision
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, collect, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    ds.garbage_collect(now=clock())
    for revision, expected in kept.items():
        assert contents(ds, revision) == expected
    assert [c.revision for c in ds.changes(old[-1])][-1] == max(kept)
