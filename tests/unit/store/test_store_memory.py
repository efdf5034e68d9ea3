"""Memory-backend specifics: URL, options, index use, rollback bookkeeping, GC batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zanzi.errors import InvalidArgument, RelationshipExists
from zanzi.model import Update
from zanzi.store.base import IntRevision, RelationshipQuery
from zanzi.store.memory import MemoryDatastore, open_memory

Q = RelationshipQuery


def write(ds: MemoryDatastore, *texts: str) -> IntRevision:
    with ds.transaction() as tx:
        tx.write([Update.touch(t) for t in texts])
    assert isinstance(tx.revision, IntRevision)
    return tx.revision


def test_open_memory_urls_and_options() -> None:
    assert isinstance(open_memory("memory://"), MemoryDatastore)
    named = open_memory("memory://anything", gc_window=timedelta(minutes=5))
    assert named.gc_window == timedelta(minutes=5)
    assert open_memory("memory://").datastore_id != open_memory("memory://").datastore_id
    with pytest.raises(InvalidArgument):
        open_memory("sqlite:///x.db")
    with pytest.raises(InvalidArgument, match="unknown memory datastore options"):
        open_memory("memory://", colour="blue")
    with pytest.raises(InvalidArgument):
        open_memory("memory://", gc_window="a while")
    with pytest.raises(InvalidArgument):
        open_memory("memory://", clock="noon")


def test_queries_touch_only_the_buckets_they_name() -> None:
    ds = MemoryDatastore()
    write(ds, *(f"doc:d{i}#viewer@user:u{i % 50}" for i in range(2000)), "doc:d1#editor@user:u1")
    forward = Q(resource_type="doc", relation="viewer", resource_ids=("d1", "d2", "d2", "nope"))
    assert len(ds._candidates(forward)) == 2
    reverse = Q(subject_type="user", subject_ids=("u1",))
    assert len(ds._candidates(reverse)) == 41
    by_prefix = Q(resource_type="doc", relation="viewer", resource_id_prefix="d19")
    assert len(ds._candidates(by_prefix)) == 111
    assert {str(r) for r in ds.snapshot(ds.head_revision()).query(forward)} == {
        "doc:d1#viewer@user:u1",
        "doc:d2#viewer@user:u2",
    }


def test_rollback_restores_the_indexes_exactly() -> None:
    ds = MemoryDatastore()
    write(ds, "doc:one#viewer@user:alice", "doc:two#viewer@user:bob")
    state = (ds._row_count, dict(ds._live), {k: dict(v) for k, v in ds._created_at.items()})
    with pytest.raises(RelationshipExists), ds.transaction() as tx:
        tx.write([Update.touch("doc:one#viewer@user:alice[cav]"), Update.create("doc:three#viewer@user:c")])
        tx.write([Update.delete("doc:two#viewer@user:bob"), Update.touch("doc:three#viewer@user:c[cav]")])
        tx.delete(Q(resource_type="doc"))
        tx.write_schema("v1")
        tx.write([Update.create("doc:four#viewer@user:d"), Update.create("doc:four#viewer@user:d")])
    assert (ds._row_count, dict(ds._live), {k: dict(v) for k, v in ds._created_at.items()}) == state
    assert ds._deleted_at == {}
    assert ds._schemas == []
    assert all(row.deleted is None for row in ds._live.values())


def test_gc_in_batches(monkeypatch) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    ds = MemoryDatastore(gc_window=timedelta(hours=1), clock=lambda: now[0])
    write(ds, *(f"doc:d{i}#viewer@user:u{i}" for i in range(25)))
    with ds.transaction() as tx:
        tx.delete(Q(resource_type="doc"))
    now[0] += timedelta(hours=2)
    write(ds, "doc:keep#viewer@user:k")
    calls = []
    real = ds._collect_batch

    def small_batches(at, batch_size):
        calls.append(batch_size)
        return real(at, batch_size=10)

    monkeypatch.setattr(ds, "_collect_batch", small_batches)
    assert ds.garbage_collect() == 25 + 2  # 25 rows and the transaction records before r3
    assert len(calls) >= 3
    assert ds._row_count == 1
