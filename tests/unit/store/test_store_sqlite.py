"""SQLite-specific behaviour: URLs, persistence, migrations, WAL, processes, crashes, errors."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from zanzi.errors import (
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    RelationshipExists,
    Unavailable,
    WriteConflict,
    ZanziError,
)
from zanzi.model import Relationship, Update
from zanzi.store.base import Datastore, IntRevision, RelationshipQuery
from zanzi.store.sql import sqlite as sqlite_backend
from zanzi.store.sql.common import VERSION_TABLE, load_migrations
from zanzi.store.sql.sqlite import SQLiteDatastore, open_sqlite, parse_sqlite_url, translate

Q = RelationshipQuery


def url_for(path: Path, query: str = "") -> str:
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "zanzi.db"


@pytest.fixture
def ds(db_path: Path):
    store = open_sqlite(url_for(db_path))
    yield store
    store.close()


def write(ds: Datastore, *texts: str) -> IntRevision:
    with ds.transaction() as tx:
        tx.write([Update.touch(t) for t in texts])
    assert isinstance(tx.revision, IntRevision)
    return tx.revision


def read(ds) -> set[str]:
    return {str(r) for r in ds.snapshot(ds.head_revision()).query(Q())}


def run_child(code: str, *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


# -- URLs and options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "options"),
    [
        ("sqlite:///relative/path.db", "relative/path.db", {}),
        ("sqlite:////absolute/path.db", "/absolute/path.db", {}),
        ("sqlite://:memory:", None, {}),
        ("sqlite:///:memory:", None, {}),
        (
            "sqlite:///x.db?synchronous=normal&busy_timeout=2",
            "x.db",
            {"synchronous": "normal", "busy_timeout": "2"},
        ),
        ("sqlite:///with%20space.db", "with space.db", {}),
    ],
)
def test_parse_url(url: str, path: str | None, options: dict[str, str]) -> None:
    assert parse_sqlite_url(url) == (path, options)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite://",
        "postgres:///x.db",
        "sqlite:///dir/",
        "sqlite:///x.db?a",
    ],
)
def test_bad_urls_are_invalid_arguments(url: str) -> None:
    with pytest.raises(InvalidArgument):
        open_sqlite(url)


def test_bad_options_are_invalid_arguments(db_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown SQLite datastore options: colour"):
        open_sqlite(url_for(db_path), colour="blue")
    with pytest.raises(InvalidArgument):
        open_sqlite(url_for(db_path), synchronous="sometimes")
    with pytest.raises(InvalidArgument):
        open_sqlite(url_for(db_path), busy_timeout="soon")
    with pytest.raises(InvalidArgument):
        open_sqlite(url_for(db_path, "gc_window=-5"))


def test_relative_path_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_sqlite("sqlite:///relative.db") as ds:
        write(ds, "doc:one#viewer@user:alice")
    assert (tmp_path / "relative.db").exists()


def test_url_options_apply(db_path: Path) -> None:
    with open_sqlite(url_for(db_path, "synchronous=normal&gc_window=60&busy_timeout=1.5")) as ds:
        assert isinstance(ds, SQLiteDatastore)
        assert ds.gc_window == timedelta(seconds=60)
        assert ds._writer.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert ds._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 1500
        # keyword options win over the URL
    with open_sqlite(url_for(db_path, "synchronous=normal"), synchronous="full") as ds:
        assert ds._writer.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot open"):
        open_sqlite(url_for(tmp_path / "no" / "such" / "dir.db"))


# -- persistence and layout -------------------------------------------------------------------


def test_reopen_keeps_everything(db_path: Path) -> None:
    with open_sqlite(url_for(db_path)) as ds:
        identity, secret = ds.datastore_id, ds.token_secret
        first = write(ds, "doc:one#viewer@user:alice", 'doc:one#viewer@user:bob[cav:{"a":[1,2]}]')
        with ds.transaction() as tx:
            tx.write_schema("definition user {}")
            tx.write([Update.delete("doc:one#viewer@user:alice")])
        second = tx.revision
        assert isinstance(second, IntRevision)
    with open_sqlite(url_for(db_path)) as ds:
        assert ds.datastore_id == identity
        assert ds.token_secret == secret and len(secret) == 32
        assert ds.head_revision() == second
        assert read(ds) == {'doc:one#viewer@user:bob[cav:{"a":[1,2]}]'}
        assert {str(r) for r in ds.snapshot(first).query(Q())} == {
            "doc:one#viewer@user:alice",
            'doc:one#viewer@user:bob[cav:{"a":[1,2]}]',
        }
        assert ds.snapshot(second).read_schema() == "definition user {}"
        assert [c.revision for c in ds.changes(first)] == [second]
        assert write(ds, "doc:two#viewer@user:carol") == IntRevision(second.value + 1)
    assert ds.capabilities.persistent and ds.capabilities.multi_process


def test_uuid_and_secret_differ_between_files(tmp_path: Path) -> None:
    with open_sqlite(url_for(tmp_path / "a.db")) as a, open_sqlite(url_for(tmp_path / "b.db")) as b:
        assert a.datastore_id != b.datastore_id
        assert a.token_secret != b.token_secret


def test_migration_version_table(db_path: Path) -> None:
    known = load_migrations("sqlite", sqlite3.complete_statement)
    assert [m.version for m in known] == list(range(1, len(known) + 1))
    for _ in range(2):  # reopening applies nothing twice
        open_sqlite(url_for(db_path)).close()
    raw = sqlite3.connect(db_path)
    try:
        rows = raw.execute(
            f"SELECT version, name, applied_at FROM {VERSION_TABLE} ORDER BY version"
        ).fetchall()
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        genesis = raw.execute("SELECT count(*) FROM transactions").fetchone()[0]
    finally:
        raw.close()
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in known]
    assert {"transactions", "relationships", "schema_versions", "metadata", VERSION_TABLE} <= tables
    assert {
        "relationships_forward",
        "relationships_reverse",
        "relationships_live_key",
        "relationships_created",
        "relationships_deleted",
        "relationships_expiration",
    } <= indexes
    assert genesis == 1


def test_newer_database_version_is_refused(db_path: Path) -> None:
    open_sqlite(url_for(db_path)).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute(f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (999, 'future', 'x')")
    raw.close()
    with pytest.raises(FailedPrecondition, match="upgrade Zanzi") as info:
        open_sqlite(url_for(db_path))
    assert info.value.details["database_version"] == 999


def test_wal_mode_and_synchronous_full(ds: SQLiteDatastore, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    assert ds._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ds._reader().execute("PRAGMA synchronous").fetchone()[0] == 2


def test_memory_url_uses_a_private_temporary_database() -> None:
    a = open_sqlite("sqlite://:memory:")
    b = open_sqlite("sqlite://:memory:")
    try:
        write(a, "doc:one#viewer@user:alice")
        assert read(b) == set()
        assert not a.capabilities.persistent and not a.capabilities.multi_process
        directory = os.path.dirname(a.path)
        assert os.path.exists(a.path)
    finally:
        a.close()
        b.close()
    assert not os.path.exists(directory)


# -- errors -----------------------------------------------------------------------------------


def test_translate_maps_driver_errors() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert isinstance(translate(locked, writing=True), WriteConflict)
    assert isinstance(translate(locked, writing=False), Unavailable)
    unique = sqlite3.IntegrityError("UNIQUE constraint failed: relationships.resource_type")
    assert isinstance(translate(unique), RelationshipExists)
    not_null = sqlite3.IntegrityError("NOT NULL constraint failed: relationships.relation")
    assert type(translate(not_null)) is InternalError
    closed = sqlite3.ProgrammingError("Cannot operate on a closed database.")
    assert isinstance(translate(closed), Unavailable)
    assert type(translate(sqlite3.DatabaseError("boom"))) is InternalError
    assert type(translate(sqlite3.Warning("one statement at a time"))) is InternalError


def test_not_a_database_is_translated(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(ZanziError) as info:
        open_sqlite(url_for(db_path))
    assert isinstance(info.value, InternalError)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_driver_errors_during_use_are_translated(ds: SQLiteDatastore, db_path: Path) -> None:
    head = write(ds, "doc:one#viewer@user:alice")
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("DROP TABLE relationships")
    raw.close()
    with pytest.raises(InternalError) as info:
        list(ds.snapshot(head).query(Q(resource_type="doc")))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(InternalError), ds.transaction() as tx:
        tx.write([Update.touch("doc:two#viewer@user:bob")])
    with pytest.raises(InternalError):
        list(ds.changes(IntRevision(1)))
    assert ds.head_revision() == head  # the failed transaction left nothing behind


def test_a_locked_database_is_a_write_conflict(db_path: Path) -> None:
    with open_sqlite(url_for(db_path), busy_timeout=0.2) as ds:
        write(ds, "doc:one#viewer@user:alice")
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(WriteConflict), ds.transaction():
                pass
            assert time.monotonic() - started < 5
            assert read(ds) == {"doc:one#viewer@user:alice"}  # readers are not blocked
        finally:
            other.execute("ROLLBACK")
            other.close()
        write(ds, "doc:two#viewer@user:bob")


def test_closed_store_raises_unavailable(db_path: Path) -> None:
    ds = open_sqlite(url_for(db_path))
    snapshot = ds.snapshot(ds.head_revision())
    ds.close()
    with pytest.raises(Unavailable):
        list(snapshot.query(Q(resource_type="doc")))
    assert not ds.ready()


# -- several processes ------------------------------------------------------------------------

_CHILD_WRITER = """
import sys
from zanzi.model import Update
from zanzi.store.base import RelationshipQuery
from zanzi.store.sql.sqlite import open_sqlite

with open_sqlite(sys.argv[1]) as ds:
    seen = sorted(str(r) for r in ds.snapshot(ds.head_revision()).query(RelationshipQuery()))
    print("seen", ",".join(seen), flush=True)
    with ds.transaction() as tx:
        tx.write([Update.create("doc:child#viewer@user:child")])
    print("wrote", tx.revision, flush=True)
"""


def test_two_processes_share_one_file(ds: SQLiteDatastore, db_path: Path) -> None:
    parent = write(ds, "doc:parent#viewer@user:parent")
    child = run_child(_CHILD_WRITER, url_for(db_path))
    assert ds.wait_for_change(parent, 30.0)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "seen doc:parent#viewer@user:parent" in out
    revision = IntRevision(int(out.split("wrote ")[1].split()[0]))
    assert revision > parent
    assert ds.head_revision() == revision
    assert read(ds) == {"doc:parent#viewer@user:parent", "doc:child#viewer@user:child"}
    (changeset,) = ds.changes(parent)
    assert [str(c.relationship) for c in changeset.changes] == ["doc:child#viewer@user:child"]
    # and the parent's next revision follows the child's
    assert write(ds, "doc:again#viewer@user:parent") > revision


_CHILD_SLEEPS_IN_TRANSACTION = """
import sys, time
from zanzi.model import Update
from zanzi.store.sql.sqlite import open_sqlite

ds = open_sqlite(sys.argv[1])
with ds.transaction() as tx:
    tx.write([Update.create(f"doc:d{i}#viewer@user:u{i}") for i in range(5000)])
    tx.write_schema("definition never {}")
    print("inside", flush=True)
    time.sleep(120)
"""

_CHILD_WRITES_FOREVER = """
import sys, itertools
from zanzi.model import Update
from zanzi.store.sql.sqlite import open_sqlite

ds = open_sqlite(sys.argv[1])
for n in itertools.count():
    with ds.transaction() as tx:
        tx.write([Update.create(f"doc:b{n}_{i}#viewer@user:u{i}") for i in range(2000)])
        tx.write([Update.touch(f"folder:b{n}#viewer@user:u{i}") for i in range(500)])
    if n == 0:
        print("committed", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_inside_a_transaction_leaves_nothing(ds: SQLiteDatastore, db_path: Path) -> None:
    before = write(ds, "doc:before#viewer@user:alice")
    child = run_child(_CHILD_SLEEPS_IN_TRANSACTION, url_for(db_path))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "inside"
    # While the child holds the write lock, readers here are unaffected.
    assert read(ds) == {"doc:before#viewer@user:alice"}
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stdout.close()
    child.stderr.close()  # type: ignore[union-attr]
    with open_sqlite(url_for(db_path)) as reopened:
        assert reopened.head_revision() == before
        assert read(reopened) == {"doc:before#viewer@user:alice"}
        assert reopened.snapshot(before).read_schema() is None
        assert write(reopened, "doc:after#viewer@user:bob") == IntRevision(before.value + 1)
    assert ds.head_revision() == IntRevision(before.value + 1)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_batch_leaves_whole_batches_only(db_path: Path) -> None:
    with open_sqlite(url_for(db_path)) as ds:
        genesis = ds.head_revision()
    child = run_child(_CHILD_WRITES_FOREVER, url_for(db_path))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "committed"
    time.sleep(0.7)  # somewhere in the middle of a later batch
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stdout.close()
    child.stderr.close()  # type: ignore[union-attr]
    with open_sqlite(url_for(db_path)) as ds:
        sets = list(ds.changes(genesis))
        assert sets, "at least one batch committed"
        for changeset in sets:
            assert len(changeset.changes) == 2500
        docs = list(ds.snapshot(ds.head_revision()).query(Q(resource_type="doc")))
        folders = list(ds.snapshot(ds.head_revision()).query(Q(resource_type="folder")))
        assert len(docs) == 2000 * len(sets)
        assert len(folders) == 500 * len(sets)
        assert ds._writer.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- efficiency -------------------------------------------------------------------------------


def test_a_batched_forward_query_is_one_statement(ds: SQLiteDatastore) -> None:
    write(ds, *(f"doc:d{i}#viewer@user:u{i % 10}" for i in range(500)))
    snapshot = ds.snapshot(ds.head_revision())
    statements: list[str] = []
    conn = ds._reader()
    conn.set_trace_callback(statements.append)
    try:
        ids = tuple(f"d{i}" for i in range(0, 200, 2))
        got = list(snapshot.query(Q(resource_type="doc", relation="viewer", resource_ids=ids)))
        reverse = list(snapshot.query(Q(subject_type="user", subject_ids=("u1", "u2"), resource_type="doc")))
    finally:
        conn.set_trace_callback(None)
    assert len(got) == 100 and len(reverse) == 100
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements
    plan = conn.execute("EXPLAIN QUERY PLAN " + selects[0].replace("?", "0")).fetchall()
    assert "relationships_forward" in str(plan)
    plan = conn.execute("EXPLAIN QUERY PLAN " + selects[1]).fetchall()
    assert "relationships_reverse" in str(plan)


def test_bulk_write_of_100k_in_one_transaction(ds: SQLiteDatastore) -> None:
    updates = [Update.create(Relationship.parse(f"doc:d{i}#viewer@user:u{i % 997}")) for i in range(100_000)]
    started = time.monotonic()
    with ds.transaction() as tx:
        tx.write(updates)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"bulk write took {elapsed:.1f}s"  # normally ~1s; only catches pathologies
    assert ds.snapshot(ds.head_revision()).exists(Q(resource_type="doc", resource_ids=("d99999",)))
    count = ds._reader().execute("SELECT count(*) FROM relationships").fetchone()[0]
    assert count == 100_000


def test_gc_runs_in_bounded_batches(ds: SQLiteDatastore, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_backend, "GC_BATCH", 10)
    write(ds, *(f"doc:d{i}#viewer@user:u{i}" for i in range(35)))
    with ds.transaction() as tx:
        assert len(tx.delete(Q(resource_type="doc"))) == 35
    statements: list[str] = []
    ds._writer.set_trace_callback(statements.append)
    try:
        removed = ds.garbage_collect(now=ds._clock() + 2 * ds.gc_window)
    finally:
        ds._writer.set_trace_callback(None)
    assert removed == 35 + 2  # 35 rows and the two transactions before the head
    assert sum(1 for s in statements if s.startswith("COMMIT")) >= 4
    assert ds._writer.execute("SELECT count(*) FROM relationships").fetchone()[0] == 0


def test_reader_connections_are_per_thread_and_closed_with_their_thread(ds: SQLiteDatastore) -> None:
    write(ds, "doc:one#viewer@user:alice")
    together = threading.Barrier(5)
    conns: list[sqlite3.Connection] = []

    def work() -> None:
        read(ds)
        conns.append(ds._reader())
        together.wait(10)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(conn) for conn in conns}) == 5
    gc.collect()
    for conn in conns:  # each closed when its thread ended
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert len(ds._readers) <= 1  # at most this thread's


def test_snapshot_reads_are_consistent_across_processes(db_path: Path) -> None:
    with open_sqlite(url_for(db_path)) as ds:
        r1 = write(ds, "doc:one#viewer@user:alice")
        child = run_child(_CHILD_WRITER, url_for(db_path))
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert {str(r) for r in ds.snapshot(r1).query(Q())} == {"doc:one#viewer@user:alice"}
