"""The SQL helpers: statement splitting, migration loading and planning, query bits."""

from __future__ import annotations

import sqlite3

import pytest

from zanzi.errors import FailedPrecondition
from zanzi.store.sql.common import (
    Migration,
    chunked,
    load_migrations,
    pending_migrations,
    placeholders,
    prefix_upper_bound,
    run_migrations,
    split_statements,
)


def test_split_statements_with_sqlite_completion() -> None:
    script = """
    -- a comment
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES ('y');
    END;
    -- trailing comment only
    """
    statements = split_statements(script, sqlite3.complete_statement)
    assert len(statements) == 2
    assert statements[0].startswith("CREATE TABLE a")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    assert split_statements("SELECT 1;\nSELECT 2;") == ["SELECT 1;", "SELECT 2;"]


def test_shipped_sqlite_migrations_load() -> None:
    migrations = load_migrations("sqlite", sqlite3.complete_statement)
    assert migrations[0].version == 1 and migrations[0].name == "initial"
    assert str(migrations[0]) == "0001_initial"
    assert any("CREATE TABLE relationships" in s for s in migrations[0].statements)


def test_pending_migrations() -> None:
    known = [Migration(1, "a", ()), Migration(2, "b", ())]
    assert pending_migrations(0, known, database="db") == known
    assert pending_migrations(1, known, database="db") == known[1:]
    assert pending_migrations(2, known, database="db") == []
    with pytest.raises(FailedPrecondition) as info:
        pending_migrations(3, known, database="db")
    assert info.value.details == {"database_version": 3, "known_version": 2}


def test_run_migrations_is_idempotent_and_bootstraps_once() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrations = [
        Migration(1, "one", ("CREATE TABLE t (x INTEGER)",)),
        Migration(2, "two", ("ALTER TABLE t ADD COLUMN y TEXT",)),
    ]
    boots: list[int] = []
    assert run_migrations(conn, migrations, database="db", on_transaction=lambda c: boots.append(1)) == 2
    assert run_migrations(conn, migrations, database="db", on_transaction=lambda c: boots.append(1)) == 2
    assert boots == [1, 1]
    assert conn.execute("SELECT count(*) FROM zanzi_migrations").fetchone()[0] == 2
    conn.execute("INSERT INTO t VALUES (1, 'a')")


def test_failed_migration_rolls_back() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    broken = [Migration(1, "one", ("CREATE TABLE t (x)", "THIS IS NOT SQL"))]
    with pytest.raises(sqlite3.OperationalError):
        run_migrations(conn, broken, database="db")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM zanzi_migrations").fetchone()[0] == 0


def test_query_helpers() -> None:
    assert [list(c) for c in chunked([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert [list(c) for c in chunked([], 2)] == [[]]
    assert placeholders(3) == "?, ?, ?"
    assert prefix_upper_bound("abc") == "abd"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"
