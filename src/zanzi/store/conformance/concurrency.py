"""Conformance tests: threads: readers during a write, serialised writers, nesting."""

from __future__ import annotations

import threading
import time

from zanzi.errors import FailedPrecondition
from zanzi.model import Update
from zanzi.store.base import ChangeKind, Datastore, Revision
from zanzi.store.conformance._base import ConformanceBase, Q, read, write


class ConcurrencyTests(ConformanceBase):
    """Threads: readers during a write, serialised writers, nesting."""

    # -- concurrency ------------------------------------------------------------------------

    def test_readers_run_during_a_write_and_never_see_it(self, ds: Datastore) -> None:
        self.require(ds, "concurrency")
        base = write(ds, "doc:base#viewer@user:alice")
        in_transaction = threading.Event()
        release = threading.Event()
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                with ds.transaction() as tx:
                    tx.write([Update.create(f"doc:new{i}#viewer@user:u{i}") for i in range(200)])
                    tx.write([Update.delete("doc:base#viewer@user:alice")])
                    in_transaction.set()
                    if not release.wait(20):
                        raise TimeoutError("never released")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                in_transaction.set()

        def reader(results: list[set[str]]) -> None:
            try:
                for _ in range(5):
                    results.append(read(ds))
                    assert ds.head_revision() == base
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writing = threading.Thread(target=writer)
        writing.start()
        assert in_transaction.wait(20)
        results: list[set[str]] = []
        readers = [threading.Thread(target=reader, args=(results,)) for _ in range(4)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(20)
            assert not thread.is_alive(), "a reader waited for the writer"
        release.set()
        writing.join(20)
        assert not errors, errors
        assert results and all(r == {"doc:base#viewer@user:alice"} for r in results)
        assert ds.head_revision() > base
        assert len(read(ds)) == 200

    def test_concurrent_writers_are_serialised(self, ds: Datastore) -> None:
        self.require(ds, "concurrency")
        start = ds.head_revision()
        revisions: list[Revision] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            try:
                for i in range(15):
                    revision = write(ds, f"doc:w{n}#viewer@user:u{i}")
                    with lock:
                        revisions.append(revision)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len(set(revisions)) == 90
        assert len(read(ds)) == 90
        if ds.capabilities.watch:
            sets = list(ds.changes(start))
            assert [c.revision for c in sets] == sorted(revisions)
            assert sum(len(c.changes) for c in sets) == 90

    def test_snapshots_stay_consistent_under_concurrent_writes(self, ds: Datastore) -> None:
        self.require(ds, "concurrency")
        expected: dict[Revision, int] = {ds.head_revision(): 0}
        observed: list[tuple[Revision, int]] = []
        errors: list[BaseException] = []
        done = threading.Event()

        reading = threading.Event()

        def writer() -> None:
            try:
                reading.wait(10)
                for i in range(60):
                    updates = [Update.touch(f"doc:d{i}_{j}#viewer@user:u{j}") for j in range(3)]
                    if i:
                        updates.append(Update.delete(f"doc:d{i - 1}_0#viewer@user:u0"))
                    revision = write(ds, *updates)
                    expected[revision] = 2 * i + 3
                    time.sleep(0.001)  # let the readers in between commits
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                done.set()

        def reader() -> None:
            try:
                rounds = 0
                while not done.is_set() or rounds < 20:
                    head = ds.head_revision()
                    observed.append((head, len(list(ds.snapshot(head).query(Q(resource_type="doc"))))))
                    reading.set()
                    rounds += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len({revision for revision, _ in observed}) > 1
        for revision, count in observed:
            assert expected[revision] == count, revision

    def test_nested_transaction_fails_instead_of_deadlocking(self, ds: Datastore) -> None:
        self.require(ds, "concurrency")
        outcome: list[BaseException | None] = []

        def nest() -> None:
            try:
                with ds.transaction() as tx:
                    tx.write([Update.create("doc:outer#viewer@user:alice")])
                    with ds.transaction():
                        pass
            except BaseException as exc:
                outcome.append(exc)
            else:  # pragma: no cover - reported below
                outcome.append(None)

        thread = threading.Thread(target=nest, daemon=True)
        thread.start()
        thread.join(20)
        assert not thread.is_alive(), "a nested transaction deadlocked"
        assert len(outcome) == 1 and isinstance(outcome[0], FailedPrecondition), outcome
        assert read(ds) == set()  # the outer transaction rolled back
        write(ds, "doc:after#viewer@user:bob")  # and the write lock was released

    def test_changes_and_touch_kinds(self, ds: Datastore) -> None:
        self.require(ds, "watch")
        start = ds.head_revision()
        write(ds, "doc:one#viewer@user:alice")
        write(ds, Update.delete("doc:one#viewer@user:alice"))
        kinds = [change.kind for changeset in ds.changes(start) for change in changeset.changes]
        assert kinds == [ChangeKind.TOUCH, ChangeKind.DELETE]
