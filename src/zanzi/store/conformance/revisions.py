"""Conformance tests: identity, lifecycle, revision order and validity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from zanzi.errors import MalformedToken, RevisionGarbageCollected, RevisionInFuture, Unavailable
from zanzi.store.base import Datastore
from zanzi.store.conformance._base import HOUR, ConformanceBase, DatastoreFactory, FakeClock, Q, read, write


class RevisionTests(ConformanceBase):
    """Identity, lifecycle, revision order and validity."""

    # -- identity and lifecycle -------------------------------------------------------------

    def test_new_store_is_empty(self, ds: Datastore) -> None:
        head = ds.head_revision()
        ds.check_revision(head)
        snapshot = ds.snapshot(head)
        assert snapshot.revision == head
        assert snapshot.read_schema() is None
        assert list(snapshot.query(Q())) == []
        assert list(snapshot.query(Q(resource_type="doc"))) == []
        assert ds.ready()

    def test_identity_is_stable_and_unique(self, make: Callable[..., Datastore]) -> None:
        a, b = make(), make()
        assert isinstance(a.datastore_id, str) and a.datastore_id
        assert a.datastore_id == a.datastore_id
        assert a.datastore_id != b.datastore_id
        assert isinstance(a.token_secret, bytes) and len(a.token_secret) >= 16
        assert a.token_secret == a.token_secret
        assert a.token_secret != b.token_secret

    def test_close_is_idempotent_and_final(self, factory: DatastoreFactory, clock: FakeClock) -> None:
        store = factory(clock=clock)
        write(store, "doc:one#viewer@user:alice")
        store.close()
        store.close()
        with pytest.raises(Unavailable):
            store.head_revision()
        with pytest.raises(Unavailable), store.transaction():
            pass

    # -- revisions --------------------------------------------------------------------------

    def test_each_transaction_gets_a_greater_revision(self, ds: Datastore) -> None:
        start = ds.head_revision()
        revisions = [write(ds, f"doc:d{i}#viewer@user:u{i}") for i in range(5)]
        assert start < revisions[0]
        assert all(a < b for a, b in zip(revisions, revisions[1:], strict=False))
        assert ds.head_revision() == revisions[-1]
        assert len(set(revisions)) == 5
        for revision in revisions:
            parsed = ds.parse_revision(str(revision))
            assert parsed == revision and hash(parsed) == hash(revision)
            assert str(parsed) == str(revision)
            ds.check_revision(revision)

    def test_parse_revision_rejects_garbage(self, ds: Datastore) -> None:
        for text in ("", "not-a-revision", "-1", "1 2", "0x10"):
            with pytest.raises(MalformedToken):
                ds.parse_revision(text)

    def test_empty_transaction_commits_a_revision(self, ds: Datastore) -> None:
        before = ds.head_revision()
        with ds.transaction() as tx:
            pass
        assert tx.revision > before
        assert ds.head_revision() == tx.revision

    def test_check_revision_in_future(self, ds: Datastore) -> None:
        self.require(ds, "future_revision")
        future = self.future_revision(ds)
        if future is None:
            pytest.skip("the backend cannot make up a future revision")
        with pytest.raises(RevisionInFuture):
            ds.check_revision(future)
        with pytest.raises(RevisionInFuture):
            ds.snapshot(future)

    def test_check_revision_outside_gc_window(self, make: Callable[..., Datastore], clock: FakeClock) -> None:
        self.require(None, "gc")
        ds = make(gc_window=HOUR)
        old = write(ds, "doc:one#viewer@user:alice")
        replaced = write(ds, "doc:two#viewer@user:bob")  # `old` stops being current now
        clock.advance(timedelta(minutes=30))
        ds.check_revision(old)
        clock.advance(2 * HOUR)
        newer = write(ds, "doc:three#viewer@user:carol")
        with pytest.raises(RevisionGarbageCollected):
            ds.check_revision(old)
        # `replaced` was the newest revision until `newer`, inside the window: still valid.
        ds.check_revision(replaced)
        ds.check_revision(newer)
        clock.advance(100 * HOUR)
        ds.check_revision(newer)  # the head never expires

    def test_an_idle_store_keeps_its_last_revision_valid(
        self, make: Callable[..., Datastore], clock: FakeClock
    ) -> None:
        """A revision stays valid while it was current at some instant inside the window, so
        the first write after a long quiet spell does not invalidate every token out there."""
        self.require(None, "gc")
        ds = make(gc_window=HOUR)
        quiet = write(ds, "doc:one#viewer@user:alice")
        clock.advance(10 * HOUR)
        write(ds, "doc:two#viewer@user:bob")
        ds.check_revision(quiet)
        assert ds.garbage_collect(now=clock()) >= 0
        assert read(ds, at=quiet) == {"doc:one#viewer@user:alice"}
        if ds.capabilities.watch:
            assert len(list(ds.changes(quiet))) == 1
        clock.advance(2 * HOUR)
        write(ds, "doc:three#viewer@user:carol")
        with pytest.raises(RevisionGarbageCollected):
            ds.check_revision(quiet)
