"""Faults on PostgreSQL: a restart under load, killed connections, an unreachable server. On a
dedicated server, since the tests stop it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from support.postgres import PostgresServer, new_store_url
from zanzi.errors import Unavailable, WriteConflict
from zanzi.model import Update
from zanzi.store.base import IntRevision, RelationshipQuery
from zanzi.store.sql.postgres import PostgresDatastore, open_postgres

Q = RelationshipQuery
KILL_CLIENTS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


@pytest.fixture(scope="module")
def server(pg: PostgresServer) -> Iterator[PostgresServer]:
    own = PostgresServer()
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
def store(server: PostgresServer) -> Iterator[PostgresDatastore]:
    ds = open_postgres(new_store_url(server), migrate=True, connect_timeout=1, acquire_timeout=2)
    try:
        yield ds
    finally:
        ds.close()


def test_restart_under_load_loses_no_acknowledged_write(
    server: PostgresServer, store: PostgresDatastore
) -> None:
    acknowledged: list[tuple[str, IntRevision]] = []
    failures: list[tuple[type[BaseException], float]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            text = f"doc:w{n}_{i}#viewer@user:u{i}"
            i += 1
            started = time.monotonic()
            try:
                with store.transaction() as tx:
                    tx.write([Update.create(text)])
            except (Unavailable, WriteConflict) as exc:
                with lock:
                    failures.append((type(exc), time.monotonic() - started))
                time.sleep(0.02)
                continue
            with lock:
                acknowledged.append((text, tx.revision))

    def read() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                store.snapshot(store.head_revision()).exists(Q(resource_type="doc"))
            except Unavailable as exc:
                with lock:
                    failures.append((type(exc), time.monotonic() - started))
                time.sleep(0.02)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        before = len(acknowledged)
        server.stop("fast")
        outage_started = time.monotonic()
        time.sleep(1.0)
        # During the outage requests fail fast instead of hanging.
        started = time.monotonic()
        with pytest.raises(Unavailable):
            store.head_revision()
        assert time.monotonic() - started < 2.5
        server.start()
        back = time.monotonic()
        while True:
            try:
                store.head_revision()
                break
            except Unavailable:
                assert time.monotonic() - back < 5.0, "the datastore did not recover within 5 s"
                time.sleep(0.05)
        recovered = time.monotonic() - back
        count = len(acknowledged)
        deadline = time.monotonic() + 10
        while len(acknowledged) < count + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    print(
        f"\nrestart: {before} writes before, outage {back - outage_started:.1f} s, served again "
        f"{recovered:.2f} s after PostgreSQL returned, {len(failures)} failed requests "
        f"(slowest {max((d for _, d in failures), default=0):.2f} s), {len(acknowledged)} acknowledged"
    )
    assert before > 0 and len(acknowledged) >= count + 20
    assert failures and max(duration for _, duration in failures) < 5.0
    head = store.head_revision()
    present = {str(r) for r in store.snapshot(head).query(Q(resource_type="doc"))}
    missing = [text for text, _ in acknowledged if text not in present]
    assert not missing, f"acknowledged writes lost: {missing[:5]}"
    revisions = [revision for _, revision in acknowledged]
    assert len(set(revisions)) == len(revisions)
    for text, revision in acknowledged[:: max(1, len(acknowledged) // 20)]:
        resource = text.split("#")[0].split(":")[1]
        assert store.snapshot(revision).exists(Q(resource_type="doc", resource_ids=(resource,)))


def test_killed_connections_are_retried_for_reads(server: PostgresServer, store: PostgresDatastore) -> None:
    with store.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
    for _ in range(3):
        assert store.snapshot(tx.revision).exists(Q(resource_type="doc"))  # warm the pool
    server.execute(KILL_CLIENTS)
    assert {str(r) for r in store.snapshot(tx.revision).query(Q(resource_type="doc"))} == {
        "doc:one#viewer@user:alice"
    }
    with store.transaction() as later:
        later.write([Update.create("doc:two#viewer@user:bob")])
    assert later.revision > tx.revision


def test_a_connection_lost_inside_a_transaction_is_reported_as_not_committed(
    server: PostgresServer, store: PostgresDatastore
) -> None:
    before = store.head_revision()
    with pytest.raises(Unavailable, match="not committed"), store.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
        server.execute(KILL_CLIENTS)
        tx.write([Update.create("doc:two#viewer@user:bob")])
    assert store.head_revision() == before
    with store.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
    assert store.head_revision() > before
