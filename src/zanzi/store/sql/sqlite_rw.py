"""Rows, snapshot reads and writes of the SQLite backend: how relationships are encoded, how a
:class:`~zanzi.store.base.RelationshipQuery` becomes SQL, and the reader and writer objects that
:class:`~zanzi.store.sql.sqlite.SQLiteDatastore` hands out.

A snapshot read at revision R filters ``created_rev <= R AND (deleted_rev IS NULL OR
deleted_rev > R)`` and ``expiration > now``. Id batches become ``IN (...)`` lists of at most
:data:`ID_CHUNK` ids, so a frontier of up to that many ids is one statement.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from zanzi.errors import InvalidArgument, Unavailable
from zanzi.model import Operation, Relationship, Update
from zanzi.store._support import (
    check_limit,
    dedupe,
    exists_error,
)
from zanzi.store.base import BULK_CHUNK, IntRevision, Reader, RelationshipKey, RelationshipQuery, Writer
from zanzi.store.sql.common import (
    Encoded,
    chunked,
    decode,
    encode,
    placeholders,
    prefix_upper_bound,
    update_runs,
)
from zanzi.store.sql.sqlite_errors import driver_errors

if TYPE_CHECKING:
    from zanzi.store.sql.sqlite import SQLiteDatastore

__all__ = [
    "COLUMNS",
    "ID_CHUNK",
    "SQLiteReader",
    "SQLiteWriter",
    "decode",
    "encode",
    "read_schema",
    "select_rows",
]

#: Ids per ``IN (...)`` list; two lists plus the fixed parameters stay under 999, the
#: smallest variable limit any SQLite build has had.
ID_CHUNK = 400

_KEY = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
COLUMNS = f"{_KEY}, caveat_name, caveat_context, expiration"
_KEY_MATCH = (
    "resource_type = ? AND resource_id = ? AND relation = ? AND subject_type = ? AND subject_id = ? "
    "AND subject_relation = ?"
)
_SAME_ATTRS = "caveat_name IS ? AND caveat_context IS ? AND expiration IS ?"
#: Rows per ``executemany`` in :meth:`SQLiteWriter.bulk_create`.
_BULK_ROWS = 10_000
_INSERT = f"INSERT INTO relationships ({COLUMNS}, created_rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Snapshot visibility. The unary `+` keeps the planner from using the revision and expiration
# indexes (meant for the changelog and GC) instead of the forward / reverse ones.
_VISIBLE = (
    "+created_rev <= ? AND (+deleted_rev IS NULL OR +deleted_rev > ?) "
    "AND (+expiration IS NULL OR +expiration > ?)"
)

# An encoded relationship: the six key columns, caveat name, caveat context JSON, expiration.


# -- encoding ---------------------------------------------------------------------------------


def _row_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(row[:6])


def select_rows(
    conn: sqlite3.Connection,
    revision: int,
    now_us: int,
    q: RelationshipQuery,
    *,
    limit: int | None,
    after: RelationshipKey | None,
    ordered: bool,
    with_rowid: bool = False,
) -> list[tuple[Any, ...]]:
    """The encoded rows visible at ``revision`` matching ``q``: one statement per chunk of ids
    (one statement for up to :data:`ID_CHUNK` resource and subject ids)."""
    check_limit(limit)
    if q.is_empty() or limit == 0:
        return []
    where = [_VISIBLE]
    params: list[Any] = [revision, revision, now_us]
    if q.resource_type is not None:
        where.append("resource_type = ?")
        params.append(q.resource_type)
    if q.resource_id_prefix is not None:
        where.append("resource_id >= ?")
        params.append(q.resource_id_prefix)
        bound = prefix_upper_bound(q.resource_id_prefix)
        if bound is not None:
            where.append("resource_id < ?")
            params.append(bound)
    if q.relation is not None:
        where.append("relation = ?")
        params.append(q.relation)
    if q.subject_type is not None:
        where.append("subject_type = ?")
        params.append(q.subject_type)
    if q.subject_relation is not None:
        where.append("subject_relation = ?")
        params.append(q.subject_relation)
    if after is not None:
        clause = _after_clause(q, tuple(after))
        if clause is None:
            return []
        if clause[0]:
            where.append(clause[0])
            params.extend(clause[1])
    tail = ""
    if ordered:
        tail += f" ORDER BY {_KEY}"
    if limit is not None:
        tail += f" LIMIT {int(limit)}"
    columns = f"{COLUMNS}, rowid" if with_rowid else COLUMNS
    rids = dedupe(q.resource_ids) if q.resource_ids is not None else None
    sids = dedupe(q.subject_ids) if q.subject_ids is not None else None
    results: list[list[tuple[Any, ...]]] = []
    for rchunk in chunked(rids, ID_CHUNK) if rids is not None else [None]:
        for schunk in chunked(sids, ID_CHUNK) if sids is not None else [None]:
            clauses = list(where)
            args = list(params)
            if rchunk is not None:
                clauses.append(f"resource_id IN ({placeholders(len(rchunk))})")
                args.extend(rchunk)
            if schunk is not None:
                clauses.append(f"subject_id IN ({placeholders(len(schunk))})")
                args.extend(schunk)
            sql = f"SELECT {columns} FROM relationships WHERE {' AND '.join(clauses)}{tail}"
            results.append(conn.execute(sql, args).fetchall())
    if len(results) == 1:
        return results[0]
    if ordered:
        merged = heapq.merge(*results, key=_row_key)
        return list(itertools.islice(merged, limit))
    rows = list(itertools.chain.from_iterable(results))
    return rows[:limit] if limit is not None else rows


_KEY_NAMES = _KEY.split(", ")


def _after_clause(q: RelationshipQuery, after: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """The SQL for "key > after", or ``None`` when nothing can follow ``after``.

    The leading key columns that ``q`` pins to one value are left out of the row-value
    comparison, so that SQLite seeks the forward index past the cursor instead of scanning up
    to it (a page deep into an export costs the same as the first)."""
    fixed: list[str] = []
    single_rid = q.resource_ids[0] if q.resource_ids is not None and len(set(q.resource_ids)) == 1 else None
    single_sid = q.subject_ids[0] if q.subject_ids is not None and len(set(q.subject_ids)) == 1 else None
    for value in (q.resource_type, single_rid, q.relation, q.subject_type, single_sid, q.subject_relation):
        if value is None:
            break
        fixed.append(value)
    count = len(fixed)
    if after[:count] < tuple(fixed):
        return "", []  # every matching row sorts after the cursor
    if after[:count] > tuple(fixed) or count == len(_KEY_NAMES):
        return None
    rest = _KEY_NAMES[count:]
    return f"({', '.join(rest)}) > ({placeholders(len(rest))})", list(after[count:])


def read_schema(conn: sqlite3.Connection, revision: int) -> str | None:
    """The schema text visible at ``revision``, or ``None``."""
    row = conn.execute(
        "SELECT text FROM schema_versions WHERE created_rev <= ? ORDER BY created_rev DESC LIMIT 1",
        (revision,),
    ).fetchone()
    return None if row is None else str(row[0])


class SQLiteReader(Reader):
    """A snapshot at one revision; each query runs on the calling thread's read connection."""

    def __init__(self, ds: SQLiteDatastore, revision: int, now_us: int) -> None:
        self._ds = ds
        self._rev = revision
        self._now_us = now_us
        self.revision = IntRevision(revision)

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        """Reads the whole result inside one read transaction, then yields it: a consumer that
        stops early or interleaves other queries holds no database state. Page large reads with
        ``limit`` and ``after``."""
        ordered = ordered or limit is not None or after is not None
        rows = self._ds._read(
            lambda c: select_rows(c, self._rev, self._now_us, q, limit=limit, after=after, ordered=ordered)
        )
        return map(decode, rows)

    def exists(self, q: RelationshipQuery) -> bool:
        rows = self._ds._read(
            lambda c: select_rows(c, self._rev, self._now_us, q, limit=1, after=None, ordered=False)
        )
        return bool(rows)

    def read_schema(self) -> str | None:
        return self._ds._read(lambda c: read_schema(c, self._rev))


class SQLiteWriter(Writer):
    """The state of one write transaction on the writer connection, at its new revision."""

    def __init__(self, ds: SQLiteDatastore, conn: sqlite3.Connection, revision: int, now_us: int) -> None:
        self._ds = ds
        self._conn = conn
        self._revision = revision
        self._now_us = now_us
        self.revision = IntRevision(revision)
        self._schema_changed = False
        self._inserted = False  # whether any row has created_rev == this revision
        self._open = True

    # reads ---------------------------------------------------------------------------------

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        self._check()
        ordered = ordered or limit is not None or after is not None
        with driver_errors(writing=True):
            rows = select_rows(
                self._conn, self._revision, self._now_us, q, limit=limit, after=after, ordered=ordered
            )
        return map(decode, rows)

    def exists(self, q: RelationshipQuery) -> bool:
        self._check()
        with driver_errors(writing=True):
            return bool(
                select_rows(self._conn, self._revision, self._now_us, q, limit=1, after=None, ordered=False)
            )

    def read_schema(self) -> str | None:
        self._check()
        with driver_errors(writing=True):
            return read_schema(self._conn, self._revision)

    # writes --------------------------------------------------------------------------------

    def write(self, updates: Sequence[Update]) -> None:
        """Apply ``updates`` in order, all or nothing (a savepoint): if one fails (a CREATE of
        a live relationship raises :class:`~zanzi.errors.RelationshipExists`), none of this
        call's updates stay applied and the transaction may go on. Consecutive updates with
        the same operation and distinct keys run as one ``executemany`` each."""
        self._check()
        runs = update_runs(updates)
        conn = self._conn
        with driver_errors(writing=True):
            conn.execute("SAVEPOINT zanzi_write")
            try:
                for operation, items in runs:
                    if operation is Operation.CREATE:
                        self._create(items)
                    elif operation is Operation.TOUCH:
                        self._touch(items)
                    else:
                        self._delete_keys(items)
            except BaseException:
                conn.execute("ROLLBACK TO zanzi_write")
                conn.execute("RELEASE zanzi_write")
                raise
            conn.execute("RELEASE zanzi_write")

    def bulk_create(self, relationships: Iterable[Relationship]) -> int:
        """CREATE many relationships with one ``executemany`` per :data:`_BULK_ROWS` rows (a
        savepoint each). A batch that hits a live key, an expired one or a repeated one is
        redone through :meth:`write`, which retires expired rows and names the one that exists.

        Into a table with no rows at all (a new store's first import) the rows go in with the
        table's indexes dropped, and the indexes are built afterwards from sorted runs: several
        times faster than updating them row by row once they outgrow the page cache. A repeated
        key then shows when the unique index is built; it is named, and everything returns to
        the state before the call (indexes included)."""
        self._check()
        conn = self._conn
        with driver_errors(writing=True):
            if conn.execute("SELECT 1 FROM relationships LIMIT 1").fetchone() is not None:
                return self._bulk_insert(relationships)
            conn.execute("SAVEPOINT zanzi_bulk_fresh")
            try:
                indexes = conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'relationships' AND sql IS NOT NULL ORDER BY name"
                ).fetchall()
                for name, _ in indexes:
                    conn.execute(f'DROP INDEX "{name}"')
                count = self._bulk_insert(relationships)
                for _, sql in indexes:
                    conn.execute(sql)
            except BaseException as exc:
                repeated = self._repeated_key() if isinstance(exc, sqlite3.IntegrityError) else None
                conn.execute("ROLLBACK TO zanzi_bulk_fresh")
                conn.execute("RELEASE zanzi_bulk_fresh")
                if repeated is not None:
                    raise exists_error(repeated) from None
                raise
            conn.execute("RELEASE zanzi_bulk_fresh")
            return count

    def _repeated_key(self) -> Relationship | None:
        """A key imported twice (the reason a unique index could not be built)."""
        row = self._conn.execute(
            f"SELECT {COLUMNS} FROM relationships WHERE deleted_rev IS NULL "
            f"GROUP BY {_KEY} HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        return decode(row) if row is not None else None

    def _bulk_insert(self, relationships: Iterable[Relationship]) -> int:
        count = 0
        iterator = iter(relationships)
        conn, rev = self._conn, self._revision
        while True:
            batch = list(itertools.islice(iterator, _BULK_ROWS))
            if not batch:
                return count
            conn.execute("SAVEPOINT zanzi_bulk")
            try:
                conn.executemany(_INSERT, [(*encode(rel), rev) for rel in batch])
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO zanzi_bulk")
                conn.execute("RELEASE zanzi_bulk")
                for start in range(0, len(batch), BULK_CHUNK):
                    self.write([Update(Operation.CREATE, rel) for rel in batch[start : start + BULK_CHUNK]])
            except BaseException:
                conn.execute("ROLLBACK TO zanzi_bulk")
                conn.execute("RELEASE zanzi_bulk")
                raise
            else:
                conn.execute("RELEASE zanzi_bulk")
                self._inserted = True
            count += len(batch)

    def _create(self, items: list[tuple[Encoded, Relationship]]) -> None:
        conn, rev = self._conn, self._revision
        conn.execute("SAVEPOINT zanzi_create")
        try:
            conn.executemany(_INSERT, [(*enc, rev) for enc, _ in items])
        except sqlite3.IntegrityError:
            # Some key is live already (or live but expired): go one by one to tell which.
            conn.execute("ROLLBACK TO zanzi_create")
            for enc, rel in items:
                live = conn.execute(
                    f"SELECT rowid, expiration, created_rev FROM relationships WHERE {_KEY_MATCH} "
                    "AND deleted_rev IS NULL",
                    enc[:6],
                ).fetchone()
                if live is not None:
                    if live[1] is None or live[1] > self._now_us:
                        raise exists_error(rel) from None
                    self._retire_rowid(live[0], live[2])
                conn.execute(_INSERT, (*enc, rev))
        conn.execute("RELEASE zanzi_create")
        self._inserted = True

    def _touch(self, items: list[tuple[Encoded, Relationship]]) -> None:
        conn, rev = self._conn, self._revision
        differs = f"{_KEY_MATCH} AND deleted_rev IS NULL AND NOT ({_SAME_ATTRS})"
        conn.executemany(
            f"UPDATE relationships SET deleted_rev = ? WHERE {differs} AND created_rev < ?",
            [(rev, *enc, rev) for enc, _ in items],
        )
        if self._inserted:
            conn.executemany(
                f"DELETE FROM relationships WHERE {differs} AND created_rev = ?",
                [(*enc, rev) for enc, _ in items],
            )
        conn.executemany(
            _INSERT.replace("INSERT", "INSERT OR IGNORE", 1),
            [(*enc, rev) for enc, _ in items],
        )
        self._inserted = True

    def _delete_keys(self, items: list[tuple[Encoded, Relationship]]) -> None:
        conn, rev = self._conn, self._revision
        conn.executemany(
            f"UPDATE relationships SET deleted_rev = ? WHERE {_KEY_MATCH} AND deleted_rev IS NULL "
            "AND created_rev < ?",
            [(rev, *enc[:6], rev) for enc, _ in items],
        )
        if self._inserted:
            conn.executemany(
                f"DELETE FROM relationships WHERE {_KEY_MATCH} AND deleted_rev IS NULL AND created_rev = ?",
                [(*enc[:6], rev) for enc, _ in items],
            )

    def _retire_rowid(self, rowid: int, created_rev: int) -> None:
        if created_rev == self._revision:
            # Created by this transaction: never visible to anyone, so it simply goes.
            self._conn.execute("DELETE FROM relationships WHERE rowid = ?", (rowid,))
        else:
            self._conn.execute(
                "UPDATE relationships SET deleted_rev = ? WHERE rowid = ?", (self._revision, rowid)
            )

    def delete(self, q: RelationshipQuery, *, limit: int | None = None) -> list[Relationship]:
        """Delete the live, unexpired relationships matching ``q`` (the first ``limit`` in
        sort order when a limit is given) and return them."""
        self._check()
        conn, rev = self._conn, self._revision
        with driver_errors(writing=True):
            rows = select_rows(
                conn,
                rev,
                self._now_us,
                q,
                limit=limit,
                after=None,
                ordered=limit is not None,
                with_rowid=True,
            )
            conn.executemany(
                "UPDATE relationships SET deleted_rev = ? WHERE rowid = ? AND created_rev < ?",
                [(rev, row[9], rev) for row in rows],
            )
            if self._inserted:
                conn.executemany(
                    "DELETE FROM relationships WHERE rowid = ? AND created_rev = ?",
                    [(row[9], rev) for row in rows],
                )
        return [decode(row) for row in rows]

    def write_schema(self, text: str) -> None:
        self._check()
        if not isinstance(text, str):
            raise InvalidArgument("schema text must be a string")
        with driver_errors(writing=True):
            self._conn.execute(
                "INSERT OR REPLACE INTO schema_versions (created_rev, text) VALUES (?, ?)",
                (self._revision, text),
            )
        self._schema_changed = True

    # lifecycle -----------------------------------------------------------------------------

    def _finish(self) -> None:
        self._open = False

    def _check(self) -> None:
        if not self._open:
            raise Unavailable("this transaction has already ended")
        self._ds._check_open()
