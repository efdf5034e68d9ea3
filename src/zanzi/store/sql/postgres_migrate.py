"""Migrations of the PostgreSQL backend: the versioned runner of :mod:`zanzi.store.sql.common`
over ``migrations/postgres/NNNN_*.sql``, serialized per schema by a session advisory lock, plus
the one-time bootstrap (datastore id, token secret, genesis revision) and the version check
that refuses an unmigrated or newer database.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from typing import Any

import psycopg

from zanzi.errors import FailedPrecondition
from zanzi.store._support import Clock, to_micros
from zanzi.store.sql.common import (
    Cursor,
    current_version,
    load_migrations,
    pending_migrations,
    run_migrations,
)
from zanzi.store.sql.postgres_errors import DRIVER_ERRORS

__all__ = ["check_version", "migrate"]

Connection = psycopg.Connection[Any]


def migrate(conn: Connection, database: str, clock: Clock) -> int:
    """Apply the pending migrations under a session advisory lock (per schema)."""
    lock = "hashtext('zanzi.migrate.' || coalesce(current_schema(), ''))"
    conn.execute(f"SELECT pg_advisory_lock({lock})")
    try:

        def bootstrap(cursor: Cursor) -> None:
            now = to_micros(clock())
            cursor.execute(
                "INSERT INTO zanzi_metadata (key, value) VALUES ('datastore_id', %s) ON CONFLICT DO NOTHING",
                (str(uuid.uuid4()).encode(),),
            )
            cursor.execute(
                "INSERT INTO zanzi_metadata (key, value) VALUES ('token_secret', %s) ON CONFLICT DO NOTHING",
                (secrets.token_bytes(32),),
            )
            cursor.execute(
                "INSERT INTO zanzi_transactions (revision, xid, snapshot, timestamp) "
                "SELECT 1, pg_current_xact_id(), pg_current_snapshot(), %s "
                "WHERE NOT EXISTS (SELECT 1 FROM zanzi_clock)",
                (now,),
            )
            cursor.execute(
                "INSERT INTO zanzi_clock (revision, timestamp) VALUES (1, %s) ON CONFLICT DO NOTHING", (now,)
            )

        return run_migrations(
            conn, load_migrations("postgres"), database=database, param="%s", on_transaction=bootstrap
        )
    finally:
        with contextlib.suppress(*DRIVER_ERRORS):
            conn.execute(f"SELECT pg_advisory_unlock({lock})")


def check_version(conn: Connection, database: str) -> None:
    """Refuse a database that is not migrated, or migrated by an older or newer Zanzi."""
    known = len(load_migrations("postgres"))
    if conn.execute("SELECT to_regclass('zanzi_migrations')").fetchone() in (None, (None,)):
        raise FailedPrecondition(
            f"the PostgreSQL database {database} has no Zanzi tables; "
            f"run `zanzi migrate --datastore URL` first (or open it with migrate=True)",
            database_version=0,
            known_version=known,
        )
    version = current_version(conn.cursor())
    pending_migrations(version, load_migrations("postgres"), database=database)  # newer: refused
    if version < known:
        raise FailedPrecondition(
            f"the PostgreSQL database {database} has Zanzi schema version {version}, this Zanzi "
            f"needs version {known}; run `zanzi migrate --datastore URL` to upgrade it",
            database_version=version,
            known_version=known,
        )
