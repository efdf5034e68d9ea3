"""PostgreSQL-specific behaviour: URLs and options, migrations, identity shared between
processes, error translation, bulk import through COPY."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from support.postgres import PostgresServer, migrate_in_process
from zanzi.api.service import Service
from zanzi.cli.main import cli
from zanzi.errors import (
    FailedPrecondition,
    InvalidArgument,
    RelationshipExists,
    RevisionGarbageCollected,
    Unavailable,
    WriteConflict,
)
from zanzi.model import Consistency, Relationship, Update
from zanzi.store.base import IntRevision, RelationshipQuery
from zanzi.store.registry import open_datastore
from zanzi.store.sql.common import load_migrations
from zanzi.store.sql.postgres import PostgresDatastore, migrate_postgres, open_postgres
from zanzi.store.sql.postgres_conn import parse_postgres_url
from zanzi.store.sql.postgres_history import mark_complete

Q = RelationshipQuery
SCHEMA = "definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}"


# -- URLs and options -----------------------------------------------------------------------------


def test_url_parsing_keeps_libpq_parameters_and_hides_the_password() -> None:
    parsed = parse_postgres_url(
        "postgres://me:s3cret@db.example:6543/authz?sslmode=require&gc_window=60&options=-csearch_path%3Dz",
        frozenset({"gc_window"}),
    )
    assert parsed.options == {"gc_window": "60"}
    assert parsed.conninfo.startswith("postgresql://me:s3cret@db.example:6543/authz?")
    assert "sslmode=require" in parsed.conninfo and "gc_window" not in parsed.conninfo
    assert "s3cret" not in parsed.display and parsed.display == "postgresql://me@db.example:6543/authz"
    for bad in ("mysql://x/y", "postgresql://h:notaport/db", "postgresql://h/db?a=1&&"):
        with pytest.raises(InvalidArgument) as info:
            parse_postgres_url(bad.replace("x", "s3cret"), frozenset())
        assert "s3cret" not in str(info.value)


def test_unknown_and_bad_options_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown PostgreSQL datastore options: nope"):
        open_postgres(url, nope=1)
    with pytest.raises(InvalidArgument, match="pool_max_size"):
        open_postgres(url, pool_max_size=0)
    with pytest.raises(InvalidArgument, match="migrate"):
        open_postgres(url, migrate="perhaps")


def test_registry_schemes(url: str) -> None:
    for scheme in ("postgresql", "postgres"):
        with open_datastore(url.replace("postgresql", scheme, 1), migrate=True) as store:
            assert isinstance(store, PostgresDatastore)


def test_unreachable_server_is_unavailable_quickly(pg: PostgresServer) -> None:
    from support.postgres import free_port

    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot connect"):
        open_postgres(
            f"postgresql://zanzi@127.0.0.1:{free_port()}/postgres", connect_timeout=1, acquire_timeout=1
        )
    assert time.monotonic() - started < 5


# -- migrations -----------------------------------------------------------------------------------


def test_an_unmigrated_database_is_refused_with_advice(url: str) -> None:
    with pytest.raises(FailedPrecondition, match="zanzi migrate --datastore URL"):
        open_postgres(url)


def test_migrate_is_idempotent_and_keeps_identity(url: str) -> None:
    known = len(load_migrations("postgres"))
    assert migrate_postgres(url) == known
    with open_postgres(url) as first:
        identity, secret = first.datastore_id, first.token_secret
        with first.transaction() as tx:
            tx.write([Update.create("doc:one#viewer@user:alice")])
    assert migrate_postgres(url) == known
    with open_postgres(url, migrate=True) as again:
        assert (again.datastore_id, again.token_secret) == (identity, secret)
        assert again.head_revision() == tx.revision


def test_concurrent_migrations_from_threads_and_processes(url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate_postgres(url)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    with ProcessPoolExecutor(3, mp_context=spawn) as pool:
        futures = [pool.submit(migrate_in_process, url) for _ in range(3)]
        for thread in threads:
            thread.start()
        versions = [f.result(timeout=120) for f in futures]
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    assert set(versions) == {len(load_migrations("postgres"))}
    with open_postgres(url) as store:
        assert store.head_revision() == IntRevision(1)  # one genesis, not one per migrator


def test_a_newer_or_older_database_is_refused(pg: PostgresServer, url: str) -> None:
    migrate_postgres(url)
    schema = url.split("search_path%3D")[1]
    known = len(load_migrations("postgres"))
    pg.execute(f"INSERT INTO {schema}.zanzi_migrations VALUES ({known + 1}, 'future', 'now')")
    with pytest.raises(FailedPrecondition, match="upgrade Zanzi"):
        open_postgres(url)
    with pytest.raises(FailedPrecondition, match="upgrade Zanzi"):
        migrate_postgres(url)
    pg.execute(f"DELETE FROM {schema}.zanzi_migrations")
    with pytest.raises(FailedPrecondition, match="run `zanzi migrate"):
        open_postgres(url)


def test_cli_migrate(url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["migrate", "--datastore", url])
    assert result.exit_code == 0, result.output
    assert f"schema version {len(load_migrations('postgres'))}" in result.output
    assert runner.invoke(cli, ["--datastore", url, "migrate"]).exit_code == 0
    with open_postgres(url) as store:
        assert store.ready()


# -- identity and tokens across processes -----------------------------------------------------


def test_tokens_from_one_node_are_honoured_by_another(open_store: Callable[..., PostgresDatastore]) -> None:
    one, two = Service(open_store()), Service(open_store())
    token = one.write_schema(SCHEMA)
    token = one.write_relationships(["doc:readme#viewer@user:alice"])
    result = two.check("doc:readme", "view", "user:alice", consistency=Consistency.at_least_as_fresh(token))
    assert result.allowed
    exact = two.check("doc:readme", "view", "user:alice", consistency=Consistency.at_exact_snapshot(token))
    assert exact.allowed and exact.token == token


# -- writes and errors ------------------------------------------------------------------------


def test_concurrent_touches_of_one_key_leave_one_live_row(ds: PostgresDatastore) -> None:
    barrier = threading.Barrier(6)

    def touch(n: int) -> None:
        barrier.wait()
        for i in range(10):
            with ds.transaction() as tx:
                tx.write([Update.touch(f'doc:one#viewer@user:alice[cav:{{"n":{n * 100 + i}}}]')])

    threads = [threading.Thread(target=touch, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = list(ds.snapshot(ds.head_revision()).query(Q(resource_type="doc")))
    assert len(rows) == 1
    last = list(ds.changes(IntRevision(1)))[-1]
    assert [str(c.relationship) for c in last.changes] == [str(rows[0])]  # the last commit won


def test_concurrent_creates_of_one_key(ds: PostgresDatastore) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            with ds.transaction() as tx:
                tx.write([Update.create("doc:one#viewer@user:alice")])
            outcomes.append("ok")
        except RelationshipExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["exists", "exists", "exists", "ok"]


def test_deadlock_is_a_write_conflict_and_rolls_back(ds: PostgresDatastore) -> None:
    with ds.transaction() as tx:
        tx.write([Update.create("doc:a#viewer@user:x"), Update.create("doc:b#viewer@user:x")])
    barrier = threading.Barrier(2)
    outcomes: list[BaseException | None] = []

    def cross(first: str, second: str) -> None:
        try:
            with ds.transaction() as tx:
                tx.write([Update.touch(f"doc:{first}#viewer@user:x[cav]")])
                barrier.wait(10)
                time.sleep(0.2)
                tx.write([Update.touch(f"doc:{second}#viewer@user:x[cav]")])
            outcomes.append(None)
        except WriteConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=cross, args=p) for p in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(o is None for o in outcomes) == 1 and sum(isinstance(o, WriteConflict) for o in outcomes) == 1
    assert len(list(ds.snapshot(ds.head_revision()).query(Q(resource_type="doc")))) == 2


def test_driver_errors_never_escape(pg: PostgresServer, url: str, ds: PostgresDatastore) -> None:
    schema = url.split("search_path%3D")[1]
    pg.execute(f"ALTER TABLE {schema}.zanzi_relationships RENAME TO broken")
    try:
        with pytest.raises(Unavailable, match="zanzi migrate"):
            list(ds.snapshot(ds.head_revision()).query(Q(resource_type="doc")))
        with pytest.raises(Unavailable), ds.transaction() as tx:
            tx.write([Update.create("doc:one#viewer@user:alice")])
    finally:
        pg.execute(f"ALTER TABLE {schema}.broken RENAME TO zanzi_relationships")
    with ds.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])


def test_a_lost_commit_acknowledgement_is_resolved_by_xid_and_nonce(ds: PostgresDatastore) -> None:
    with ds.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
        xid = int(tx._xid)  # type: ignore[attr-defined]
    nonce = ds._read(
        lambda c: c.execute(
            "SELECT nonce FROM zanzi_transactions WHERE xid = %s::xid8", (str(xid),)
        ).fetchone()[0]
    )
    assert ds._resolve_commit(xid, nonce, RuntimeError("lost")) == int(str(tx.revision))
    # The same xid committed with another nonce: after a crash that lost ours, PostgreSQL gave
    # our xid to a later transaction. Its commit is not ours.
    with pytest.raises(WriteConflict, match="rolled back"):
        ds._resolve_commit(xid, uuid.uuid4(), RuntimeError("lost"))
    # An xid past the next one: the counter restarted below it.
    with pytest.raises(WriteConflict, match="rolled back"):
        ds._resolve_commit(xid + 1_000_000, uuid.uuid4(), RuntimeError("lost"))
    with pytest.raises(RuntimeError), ds.transaction() as tx:
        aborted = int(tx._xid)  # type: ignore[attr-defined]
        raise RuntimeError("roll back")
    with pytest.raises(WriteConflict, match="rolled back"):
        ds._resolve_commit(aborted, uuid.uuid4(), RuntimeError("lost"))


def test_snapshot_arithmetic() -> None:
    assert mark_complete("724:724:", 724) == "725:725:"
    assert mark_complete("700:724:705,710", 710) == "705:724:705"
    assert mark_complete("700:724:705", 730) == "705:731:705,724,725,726,727,728,729"


def test_old_revision_reads_after_their_rows_are_collected(ds: PostgresDatastore) -> None:
    with ds.transaction() as tx:
        tx.write([Update.create("doc:one#viewer@user:alice")])
    ds.gc_window = timedelta(0)
    with ds.transaction() as later:
        later.write([Update.delete("doc:one#viewer@user:alice")])
    ds.garbage_collect(now=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(RevisionGarbageCollected):
        ds.check_revision(tx.revision)


# -- bulk import --------------------------------------------------------------------------------


def test_bulk_create_semantics(ds: PostgresDatastore) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with ds.transaction() as tx:
        tx.write(
            [
                Update.create("doc:live#viewer@user:a"),
                Update.create(f"doc:gone#viewer@user:a[expiration:{past}]"),
            ]
        )
    with pytest.raises(RelationshipExists, match="doc:live#viewer@user:a"), ds.transaction() as tx:
        tx.bulk_create(Relationship.parse(f"doc:n{i}#viewer@user:a") for i in range(10))
        tx.bulk_create(
            [Relationship.parse("doc:x#viewer@user:a"), Relationship.parse("doc:live#viewer@user:a")]
        )
    with ds.transaction() as tx:
        assert (
            tx.bulk_create(
                [Relationship.parse("doc:gone#viewer@user:a"), Relationship.parse("doc:y#viewer@user:b[cav]")]
            )
            == 2
        )
        assert tx.bulk_create([]) == 0
    texts = {str(r) for r in ds.snapshot(ds.head_revision()).query(Q(resource_type="doc"))}
    assert texts == {"doc:live#viewer@user:a", "doc:gone#viewer@user:a", "doc:y#viewer@user:b[cav]"}
    kinds = [c.kind.name for c in list(ds.changes(IntRevision(2)))[-1].changes]
    assert kinds == ["TOUCH", "TOUCH"]


def test_copy_import_of_a_million_relationships(pg: PostgresServer, url: str, ds: PostgresDatastore) -> None:
    count = 1_000_000
    rels = (
        Relationship.parse(f"doc:d{i // 10}#viewer@user:u{i}")
        if i % 3
        else Relationship.parse(f"doc:d{i // 10}#editor@group:g{i % 1000}#member")
        for i in range(count)
    )
    started = time.perf_counter()
    with ds.transaction() as tx:
        assert tx.bulk_create(rels) == count
    elapsed = time.perf_counter() - started
    print(
        f"\nCOPY import of {count:,} relationships: {elapsed:.1f} s ({count / elapsed:,.0f} relationships/s)"
    )
    snapshot = ds.snapshot(tx.revision)
    assert snapshot.exists(Q(resource_type="doc", resource_ids=("d99999",), relation="viewer"))
    assert len(list(snapshot.query(Q(resource_type="doc", resource_ids=("d5",))))) == 10
    ds.close()
    pg.execute(f"DROP SCHEMA {url.split('search_path%3D')[1]} CASCADE")  # free the space


def test_psycopg_is_a_dependency() -> None:
    assert psycopg.__version__ >= "3.1"
