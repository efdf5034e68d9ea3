"""Read replicas: a streaming standby made with pg_basebackup -R. Snapshot reads go to the
replica once it has replayed the revision, to the primary while it lags."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from support.postgres import PostgresServer
from zanzi.model import Update
from zanzi.store.base import IntRevision, RelationshipQuery
from zanzi.store.sql.postgres import PostgresDatastore

Q = RelationshipQuery


@pytest.fixture(scope="module")
def primary(pg: PostgresServer) -> Iterator[PostgresServer]:
    """A small primary of its own (the shared server may hold large test data by now, which
    pg_basebackup would copy)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def replica(primary: PostgresServer) -> Iterator[PostgresServer]:
    server = PostgresServer(replica_of=primary)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def schema(primary: PostgresServer) -> str:
    return primary.create_schema()


def replayed(replica: PostgresServer, schema: str, revision: IntRevision, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = (
            replica.execute(f"SELECT revision FROM {schema}.zanzi_clock")
            if _has_table(replica, schema)
            else []
        )
        if rows and int(rows[0][0]) >= int(str(revision)):
            return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def _has_table(server: PostgresServer, schema: str) -> bool:
    return server.execute(f"SELECT to_regclass('{schema}.zanzi_clock')")[0][0] is not None


def reads_on(ds: PostgresDatastore, server: PostgresServer, fn: Callable[[], object]) -> int:
    name = f"postgresql://zanzi@127.0.0.1:{server.port}/postgres"
    before = ds.read_counts.get(name, 0)
    fn()
    return ds.read_counts.get(name, 0) - before


def test_reads_follow_the_replica_progress(
    primary: PostgresServer,
    replica: PostgresServer,
    schema: str,
    open_store: Callable[..., PostgresDatastore],
) -> None:
    pg = primary
    ds = open_store(primary.schema_url(schema), read_replicas=[replica.schema_url(schema)])
    with ds.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
    first = tx.revision
    replayed(replica, schema, first)
    time.sleep(0.1)  # past the replica progress-check interval

    def read(revision: IntRevision) -> Callable[[], set[str]]:
        return lambda: {str(r) for r in ds.snapshot(revision).query(Q(resource_type="doc"))}

    assert read(first)() == {"doc:one#viewer@user:alice"}
    assert reads_on(ds, replica, read(first)) == 1 and reads_on(ds, pg, read(first)) == 0

    replica.execute("SELECT pg_wal_replay_pause()")
    try:
        with ds.transaction() as tx:
            tx.write([Update.create("doc:two#viewer@user:bob")])
        second = tx.revision
        time.sleep(0.1)
        # The replica lags: a read at the new revision goes to the primary and is right...
        assert reads_on(ds, replica, read(second)) == 0
        assert reads_on(ds, pg, read(second)) >= 1
        assert read(second)() == {"doc:one#viewer@user:alice", "doc:two#viewer@user:bob"}
        # ...while a read at the old revision still goes to the replica.
        assert reads_on(ds, replica, read(first)) == 1
        assert read(first)() == {"doc:one#viewer@user:alice"}
    finally:
        replica.execute("SELECT pg_wal_replay_resume()")
    replayed(replica, schema, second)
    time.sleep(0.1)
    assert reads_on(ds, replica, read(second)) == 1
    assert read(second)() == {"doc:one#viewer@user:alice", "doc:two#viewer@user:bob"}
    # Head reads and writes always use the primary.
    assert reads_on(ds, replica, ds.head_revision) == 0


def test_a_dead_replica_falls_back_to_the_primary(
    pg: PostgresServer, url: str, open_store: Callable[..., PostgresDatastore]
) -> None:
    from support.postgres import free_port

    schema = url.split("search_path%3D")[1]
    ds = open_store(
        read_replicas=[
            f"postgresql://zanzi@127.0.0.1:{free_port()}/postgres?options=-csearch_path%3D{schema}"
        ],
        connect_timeout=1,
    )
    with ds.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
    assert {str(r) for r in ds.snapshot(tx.revision).query(Q(resource_type="doc"))} == {
        "doc:one#viewer@user:alice"
    }
