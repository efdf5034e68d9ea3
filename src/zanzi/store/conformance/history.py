"""Conformance tests: the changelog, waiting for changes and garbage collection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from zanzi.errors import RevisionGarbageCollected
from zanzi.model import Update
from zanzi.store.base import Datastore
from zanzi.store.conformance._base import HOUR, ConformanceBase, FakeClock, Q, change_list, read, write


class HistoryTests(ConformanceBase):
    """The changelog, waiting for changes and garbage collection."""

    # -- changes ----------------------------------------------------------------------------

    def test_changes_list_every_revision_in_order(self, ds: Datastore) -> None:
        self.require(ds, "watch")
        start = ds.head_revision()
        r1 = write(ds, "doc:one#viewer@user:alice", "doc:two#viewer@user:bob")
        r2 = write(ds, "doc:one#viewer@user:alice[cav]")
        r3 = write(ds, Update.delete("doc:two#viewer@user:bob"), Update.delete("doc:none#viewer@user:x_y"))
        r4 = write(ds, schema="definition user {}")
        r5 = write(ds)
        r6 = write(ds, "doc:one#viewer@user:alice[cav]")
        with ds.transaction() as tx:  # created and deleted inside one transaction: no change
            tx.write([Update.create("doc:tmp#viewer@user:tmp")])
            tx.delete(Q(resource_type="doc", resource_ids=("tmp",)))
        r7 = tx.revision
        r8 = write(
            ds, Update.delete("doc:one#viewer@user:alice"), Update.create("doc:one#viewer@user:alice[cav]")
        )
        sets = list(ds.changes(start))
        assert [c.revision for c in sets] == [r1, r2, r3, r4, r5, r6, r7, r8]
        assert sorted(change_list(sets[0])) == [
            ("TOUCH", "doc:one#viewer@user:alice"),
            ("TOUCH", "doc:two#viewer@user:bob"),
        ]
        assert change_list(sets[1]) == [("TOUCH", "doc:one#viewer@user:alice[cav]")]
        assert change_list(sets[2]) == [("DELETE", "doc:two#viewer@user:bob")]
        assert change_list(sets[3]) == [] and sets[3].schema_changed
        assert not any(c.schema_changed for i, c in enumerate(sets) if i != 3)
        assert change_list(sets[4]) == []
        assert change_list(sets[5]) == []
        assert change_list(sets[6]) == []
        assert change_list(sets[7]) == [("TOUCH", "doc:one#viewer@user:alice[cav]")]
        assert [c.revision for c in ds.changes(r2)] == [r3, r4, r5, r6, r7, r8]
        assert [c.revision for c in ds.changes(r2, limit=2)] == [r3, r4]
        assert list(ds.changes(r8)) == []
        assert list(ds.changes(start, limit=0)) == []

    def test_changes_of_a_large_transaction(self, ds: Datastore) -> None:
        self.require(ds, "watch")
        start = ds.head_revision()
        texts = {f"doc:d{i}#viewer@user:u{i}" for i in range(700)}
        r1 = write(ds, *texts)
        r2 = write(ds, *(Update.delete(t) for t in sorted(texts)[:300]))
        first, second = ds.changes(start)
        assert (first.revision, second.revision) == (r1, r2)
        assert {t for kind, t in change_list(first) if kind == "TOUCH"} == texts
        assert {t for _, t in change_list(second)} == set(sorted(texts)[:300])
        assert {kind for kind, _ in change_list(second)} == {"DELETE"}

    def test_changes_before_the_gc_window(self, make: Callable[..., Datastore], clock: FakeClock) -> None:
        self.require(None, "gc")
        ds = make(gc_window=HOUR)
        self.require(ds, "watch")
        old = write(ds, "doc:one#viewer@user:alice")
        kept = write(ds, "doc:one#viewer@user:alice[cav]")
        clock.advance(2 * HOUR)
        new = write(ds, "doc:two#viewer@user:bob")
        with pytest.raises(RevisionGarbageCollected):
            list(ds.changes(old))
        assert [c.revision for c in ds.changes(kept)] == [new]
        assert list(ds.changes(new)) == []

    def test_wait_for_change(self, ds: Datastore) -> None:
        self.require(ds, "watch")
        head = ds.head_revision()
        started = time.monotonic()
        assert ds.wait_for_change(head, 0.05) is False
        assert time.monotonic() - started >= 0.04
        first = write(ds, "doc:one#viewer@user:alice")
        assert ds.wait_for_change(head, 0.0) is True

        def later() -> None:
            time.sleep(0.1)
            write(ds, "doc:two#viewer@user:bob")

        thread = threading.Thread(target=later)
        thread.start()
        try:
            started = time.monotonic()
            assert ds.wait_for_change(first, 10.0) is True
            assert time.monotonic() - started < 5.0
        finally:
            thread.join()
        assert ds.head_revision() > first

    # -- garbage collection -----------------------------------------------------------------

    def test_gc_keeps_the_window_and_drops_the_rest(
        self, make: Callable[..., Datastore], clock: FakeClock
    ) -> None:
        self.require(None, "gc")
        ds = make(gc_window=HOUR)
        r1 = write(ds, "doc:one#viewer@user:alice", "doc:keep#viewer@user:zed", schema="v1")
        r2 = write(ds, Update.delete("doc:one#viewer@user:alice"), schema="v2")
        r3 = write(ds, Update.delete("doc:keep#viewer@user:zed"), "doc:keep#viewer@user:zed[cav]")
        clock.advance(2 * HOUR)  # r1 and r2 fall out of the window; r3 was current at its start
        r4 = write(ds, "doc:two#viewer@user:bob")
        clock.advance(HOUR / 6)
        r5 = write(ds, Update.delete("doc:two#viewer@user:bob"), "doc:three#viewer@user:carol[cav]")
        r6 = write(ds, "doc:three#viewer@user:carol", schema="v6")
        removed = ds.garbage_collect(now=clock())
        assert removed > 0
        assert ds.garbage_collect(now=clock()) == 0
        for revision in (r1, r2):
            with pytest.raises(RevisionGarbageCollected):
                ds.check_revision(revision)
        for revision in (r3, r4, r5, r6):
            ds.check_revision(revision)
        # Everything inside the window reads exactly as before.
        assert read(ds, at=r3) == {"doc:keep#viewer@user:zed[cav]"}
        assert read(ds, at=r4) == {"doc:keep#viewer@user:zed[cav]", "doc:two#viewer@user:bob"}
        assert read(ds, at=r5) == {"doc:keep#viewer@user:zed[cav]", "doc:three#viewer@user:carol[cav]"}
        assert read(ds, at=r6) == {"doc:keep#viewer@user:zed[cav]", "doc:three#viewer@user:carol"}
        assert ds.snapshot(r3).read_schema() == "v2"
        assert ds.snapshot(r6).read_schema() == "v6"
        if ds.capabilities.watch:
            sets = list(ds.changes(r3))
            assert [c.revision for c in sets] == [r4, r5, r6]
            assert change_list(sets[0]) == [("TOUCH", "doc:two#viewer@user:bob")]
            assert sorted(change_list(sets[1])) == [
                ("DELETE", "doc:two#viewer@user:bob"),
                ("TOUCH", "doc:three#viewer@user:carol[cav]"),
            ]
            assert change_list(sets[2]) == [("TOUCH", "doc:three#viewer@user:carol")]
            assert sets[2].schema_changed

    def test_gc_removes_long_expired_relationships(
        self, make: Callable[..., Datastore], clock: FakeClock
    ) -> None:
        self.require(None, "gc")
        self.require(None, "expiration")
        ds = make(gc_window=HOUR)
        soon = (clock() + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        later = (clock() + 10 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        write(
            ds,
            f"doc:one#viewer@user:alice[expiration:{soon}]",
            f"doc:one#viewer@user:bob[expiration:{later}]",
        )
        clock.advance(3 * HOUR)
        head = write(ds, "doc:two#viewer@user:carol")
        assert ds.garbage_collect(now=clock()) >= 1
        assert read(ds, at=head) == {
            f"doc:one#viewer@user:bob[expiration:{later}]",
            "doc:two#viewer@user:carol",
        }
        # Gone for good, even for a reader that pretends it is still early.
        assert read(ds, at=head, now=clock() - 3 * HOUR) == {
            f"doc:one#viewer@user:bob[expiration:{later}]",
            "doc:two#viewer@user:carol",
        }
        write(ds, Update.create(f"doc:one#viewer@user:alice[expiration:{later}]"))

    def test_gc_with_nothing_to_do(self, make: Callable[..., Datastore], clock: FakeClock) -> None:
        self.require(None, "gc")
        ds = make(gc_window=HOUR)
        first = write(ds, "doc:one#viewer@user:alice")
        write(ds, Update.delete("doc:one#viewer@user:alice"))
        assert ds.garbage_collect(now=clock()) == 0
        assert read(ds, at=first) == {"doc:one#viewer@user:alice"}
