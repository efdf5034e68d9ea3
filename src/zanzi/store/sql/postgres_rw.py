"""Rows, snapshot reads and writes of the PostgreSQL backend: how relationships are encoded, how
a :class:`~zanzi.store.base.RelationshipQuery` becomes SQL, and the reader and writer objects
that :class:`~zanzi.store.sql.postgres.PostgresDatastore` hands out.

A read at revision R keeps the rows with ``pg_visible_in_snapshot(created_xid, S_R) AND NOT
pg_visible_in_snapshot(deleted_xid, S_R)`` (``S_R`` is R's snapshot, see
:mod:`zanzi.store.sql.postgres`) and ``expiration > now``. A writer reads the live state instead:
``deleted_xid IS NULL`` under READ COMMITTED, i.e. the newest committed rows plus its own.
Id batches are single ``= ANY(array)`` parameters, so a frontier of any size is one statement.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from zanzi.errors import InvalidArgument, Unavailable
from zanzi.model import Operation, Relationship, Update
from zanzi.store._support import (
    check_limit,
    dedupe,
    exists_error,
    normalize,
)
from zanzi.store.base import IntRevision, Reader, RelationshipKey, RelationshipQuery, Writer
from zanzi.store.sql.common import Encoded, decode, encode, prefix_upper_bound, update_runs
from zanzi.store.sql.postgres_errors import DRIVER_ERRORS

if TYPE_CHECKING:
    from zanzi.store.sql.postgres import PostgresDatastore

__all__ = [
    "COLUMNS",
    "PAGE",
    "PostgresReader",
    "PostgresWriter",
    "Visibility",
    "decode",
    "encode",
    "read_schema",
    "select_rows",
]

#: Rows per page of an ordered read without a limit (an export), and per COPY flush.
PAGE = 5_000

_KEY_NAMES = ("resource_type", "resource_id", "relation", "subject_type", "subject_id", "subject_relation")
_KEY = ", ".join(_KEY_NAMES)
COLUMNS = f"{_KEY}, caveat_name, caveat_context, expiration"
_AT_SNAPSHOT = (
    "pg_visible_in_snapshot(created_xid, %(snap)s::pg_snapshot) "
    "AND (deleted_xid IS NULL OR NOT pg_visible_in_snapshot(deleted_xid, %(snap)s::pg_snapshot))"
)
_LIVE = "deleted_xid IS NULL"
_UNEXPIRED = "(expiration IS NULL OR expiration > %(now)s)"
# unnest() of the encoded batch: u.rt, u.rid, u.rel, u.st, u.sid, u.srel, u.cn, u.cc, u.exp.
_BATCH = (
    "unnest(%(rt)s::text[], %(rid)s::text[], %(rel)s::text[], %(st)s::text[], %(sid)s::text[], "
    "%(srel)s::text[], %(cn)s::text[], %(cc)s::text[], %(exp)s::bigint[]) "
    "AS u(rt, rid, rel, st, sid, srel, cn, cc, exp)"
)
_JOIN = (
    "r.resource_type = u.rt AND r.resource_id = u.rid AND r.relation = u.rel AND r.subject_type = u.st "
    "AND r.subject_id = u.sid AND r.subject_relation = u.srel AND r.deleted_xid IS NULL"
)
_SAME_ATTRS = (
    "r.caveat_name IS NOT DISTINCT FROM u.cn AND r.caveat_context IS NOT DISTINCT FROM u.cc "
    "AND r.expiration IS NOT DISTINCT FROM u.exp"
)
_SAME_AS_NEW = (  # in ON CONFLICT DO UPDATE, the proposed row is EXCLUDED
    "r.caveat_name IS NOT DISTINCT FROM EXCLUDED.caveat_name "
    "AND r.caveat_context IS NOT DISTINCT FROM EXCLUDED.caveat_context "
    "AND r.expiration IS NOT DISTINCT FROM EXCLUDED.expiration"
)
_R_KEY = ", ".join(f"r.{name}" for name in _KEY_NAMES)

# An encoded relationship: the six key columns, caveat name, caveat context JSON, expiration.
Key = tuple[Any, ...]
Connection = psycopg.Connection[Any]


# -- encoding ---------------------------------------------------------------------------------


def _batch_params(items: Sequence[Encoded]) -> dict[str, list[Any]]:
    columns = list(zip(*items, strict=True)) if items else [()] * 9
    names = ("rt", "rid", "rel", "st", "sid", "srel", "cn", "cc", "exp")
    return {name: list(values) for name, values in zip(names, columns, strict=True)}


# -- queries ----------------------------------------------------------------------------------


class Visibility:
    """Which rows a query may see: those of a revision's snapshot, or the live state."""

    __slots__ = ("now_us", "snapshot")

    def __init__(self, snapshot: str | None, now_us: int) -> None:
        self.snapshot = snapshot  # None: the live state (a writer)
        self.now_us = now_us


def select_rows(
    conn: Connection,
    visibility: Visibility,
    q: RelationshipQuery,
    *,
    limit: int | None,
    after: RelationshipKey | None,
    ordered: bool,
    extra: str = "",
    lock: bool = False,
) -> list[tuple[Any, ...]]:
    """The encoded rows matching ``q`` that ``visibility`` allows, in one statement.
    ``extra`` adds columns after the nine of :data:`COLUMNS`; ``lock`` adds ``FOR UPDATE``."""
    check_limit(limit)
    if q.is_empty() or limit == 0:
        return []
    where = [_AT_SNAPSHOT if visibility.snapshot is not None else _LIVE, _UNEXPIRED]
    params: dict[str, Any] = {"snap": visibility.snapshot, "now": visibility.now_us}
    for column, value in (
        ("resource_type", q.resource_type),
        ("relation", q.relation),
        ("subject_type", q.subject_type),
        ("subject_relation", q.subject_relation),
    ):
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
    if q.resource_ids is not None:
        ids = dedupe(q.resource_ids)
        where.append("resource_id = %(rid)s" if len(ids) == 1 else "resource_id = ANY(%(rid)s)")
        params["rid"] = ids[0] if len(ids) == 1 else ids
    if q.subject_ids is not None:
        ids = dedupe(q.subject_ids)
        where.append("subject_id = %(sid)s" if len(ids) == 1 else "subject_id = ANY(%(sid)s)")
        params["sid"] = ids[0] if len(ids) == 1 else ids
    if q.resource_id_prefix is not None:
        where.append("resource_id >= %(prefix)s")
        params["prefix"] = q.resource_id_prefix
        bound = prefix_upper_bound(q.resource_id_prefix)
        if bound is not None:
            where.append("resource_id < %(bound)s")
            params["bound"] = bound
    if after is not None:
        clause = _after_clause(q, tuple(after))
        if clause is None:
            return []
        if clause[0]:
            where.append(clause[0])
            params.update(clause[1])
    sql = f"SELECT {COLUMNS}{extra} FROM zanzi_relationships WHERE {' AND '.join(where)}"
    if ordered:
        sql += f" ORDER BY {_KEY}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if lock:
        sql += " FOR UPDATE"
    return conn.execute(sql, params).fetchall()


def _after_clause(q: RelationshipQuery, after: tuple[str, ...]) -> tuple[str, dict[str, str]] | None:
    """The SQL for "key > after", or ``None`` when nothing can follow ``after``. The leading key
    columns that ``q`` pins to one value are left out of the row comparison, so the forward
    index seeks straight past the cursor."""
    fixed: list[str] = []
    single_rid = q.resource_ids[0] if q.resource_ids is not None and len(set(q.resource_ids)) == 1 else None
    single_sid = q.subject_ids[0] if q.subject_ids is not None and len(set(q.subject_ids)) == 1 else None
    for value in (q.resource_type, single_rid, q.relation, q.subject_type, single_sid, q.subject_relation):
        if value is None:
            break
        fixed.append(value)
    count = len(fixed)
    if after[:count] < tuple(fixed):
        return "", {}  # every matching row sorts after the cursor
    if after[:count] > tuple(fixed) or count == len(_KEY_NAMES):
        return None
    rest = _KEY_NAMES[count:]
    names = [f"after{i}" for i in range(len(rest))]
    clause = f"({', '.join(rest)}) > ({', '.join(f'%({n})s' for n in names)})"
    return clause, dict(zip(names, after[count:], strict=True))


def read_schema(conn: Connection, revision: int | None) -> str | None:
    """The schema text at ``revision`` (``None``: the newest committed), or ``None``."""
    if revision is None:
        row = conn.execute(
            "SELECT text FROM zanzi_schema WHERE revision IS NOT NULL ORDER BY revision DESC LIMIT 1"
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT text FROM zanzi_schema WHERE revision <= %s ORDER BY revision DESC LIMIT 1", (revision,)
        ).fetchone()
    return None if row is None else str(row[0])


# -- the reader -------------------------------------------------------------------------------


class PostgresReader(Reader):
    """A snapshot at one revision. Each query is one statement on a pooled connection of the
    primary or of a read replica that has replayed the revision; ordered reads without a limit
    are fetched lazily in pages of :data:`PAGE` rows (keyset pagination), so an export of any
    size holds one page in memory and no connection between pages."""

    def __init__(self, ds: PostgresDatastore, revision: int, snapshot: str, now_us: int) -> None:
        self._ds = ds
        self._rev = revision
        self._vis = Visibility(snapshot, now_us)
        self.revision = IntRevision(revision)

    def _rows(
        self, q: RelationshipQuery, limit: int | None, after: RelationshipKey | None, ordered: bool
    ) -> list[tuple[Any, ...]]:
        return self._ds._read(
            lambda c: select_rows(c, self._vis, q, limit=limit, after=after, ordered=ordered), self._rev
        )

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        check_limit(limit)
        ordered = ordered or limit is not None or after is not None
        if not ordered or (limit is not None and limit <= PAGE):
            return map(decode, self._rows(q, limit, after, ordered))
        first = self._rows(q, PAGE, after, True)  # errors surface here, not mid-iteration
        return self._pages(q, first, limit)

    def _pages(
        self, q: RelationshipQuery, page: list[tuple[Any, ...]], limit: int | None
    ) -> Iterator[Relationship]:
        remaining = limit
        while True:
            if remaining is not None:
                page = page[:remaining]
                remaining -= len(page)
            yield from map(decode, page)
            if len(page) < PAGE or remaining == 0:
                return
            last = page[-1]
            cursor: RelationshipKey = (last[0], last[1], last[2], last[3], last[4], last[5])
            page = self._rows(q, PAGE if remaining is None else min(PAGE, remaining), cursor, True)

    def exists(self, q: RelationshipQuery) -> bool:
        return bool(self._rows(q, 1, None, False))

    def read_schema(self) -> str | None:
        return self._ds._read(lambda c: read_schema(c, self._rev), self._rev)


# -- the writer -------------------------------------------------------------------------------


class PostgresWriter(Writer):
    """The state of one write transaction (READ COMMITTED) on its own connection. Rows it
    creates carry its xid; rows it deletes get its xid as ``deleted_xid``, except rows it
    created itself, which are removed (nobody ever saw them)."""

    def __init__(
        self,
        ds: PostgresDatastore,
        conn: Connection,
        xid: int,
        now_us: int,
        on_error: Callable[[BaseException], Exception],
    ) -> None:
        self._ds = ds
        self._conn = conn
        self._xid = str(xid)  # passed as text: PostgreSQL casts text, not integers, to xid8
        self._vis = Visibility(None, now_us)
        self._on_error = on_error
        self.revision: IntRevision = IntRevision(0)  # set at commit
        self.schema_text: str | None = None
        self._inserted = False  # whether any row has created_xid == this transaction's xid
        self._holding = False  # whether it holds the clock row lock (hold_commits)
        self.schema_seen: int | None = None  # the revision of the schema read (read_schema)
        self._open = True

    def _run(self, fn: Callable[[], Any]) -> Any:
        self._check()
        try:
            return fn()
        except DRIVER_ERRORS as exc:
            raise self._on_error(exc) from exc

    # reads ---------------------------------------------------------------------------------

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        ordered = ordered or limit is not None or after is not None
        rows = self._run(
            lambda: select_rows(self._conn, self._vis, q, limit=limit, after=after, ordered=ordered)
        )
        return map(decode, rows)

    def exists(self, q: RelationshipQuery) -> bool:
        return bool(
            self._run(lambda: select_rows(self._conn, self._vis, q, limit=1, after=None, ordered=False))
        )

    def read_schema(self) -> str | None:
        """The newest committed schema (or this transaction's own). The revision of the one
        read is remembered: the commit fails with a retryable WriteConflict if another
        transaction changed the schema meanwhile, so nothing validated against an old schema
        is ever committed beside a newer one."""
        self._check()
        if self.schema_text is not None:
            return self.schema_text
        row = self._run(
            lambda: self._conn.execute(
                "SELECT text, revision FROM zanzi_schema WHERE revision IS NOT NULL "
                "ORDER BY revision DESC LIMIT 1"
            ).fetchone()
        )
        if self.schema_seen is None:
            self.schema_seen = int(row[1]) if row is not None else 0
        return None if row is None else str(row[0])

    # writes --------------------------------------------------------------------------------

    def hold_commits(self) -> None:
        """Lock the clock row now rather than at commit: every other commit waits for this
        transaction (see the module docstring of :mod:`zanzi.store.sql.postgres`). Under READ
        COMMITTED each later statement then sees every commit before this one's. A writer
        holding a row this transaction then needs waits for the lock at its own commit:
        PostgreSQL reports the deadlock and one side fails with a retryable WriteConflict."""
        if self._holding:
            return
        self._run(lambda: self._conn.execute("SELECT revision FROM zanzi_clock FOR UPDATE").fetchone())
        self._holding = True

    def write(self, updates: Sequence[Update]) -> None:
        """Apply ``updates`` in order, all or nothing (a savepoint): if one fails (a CREATE of
        a live relationship raises :class:`~zanzi.errors.RelationshipExists`), none of this
        call's updates stay applied and the transaction may go on. Consecutive updates with
        the same operation and distinct keys run as one set-based statement each."""
        runs = update_runs(updates)
        self._savepoint(lambda: self._apply(runs))

    def _savepoint(self, body: Callable[[], None]) -> None:
        conn = self._conn
        self._run(lambda: conn.execute("SAVEPOINT zanzi_write"))
        inserted = self._inserted
        try:
            body()
        except BaseException:
            self._inserted = inserted or self._inserted
            self._run(
                lambda: conn.execute("ROLLBACK TO SAVEPOINT zanzi_write; RELEASE SAVEPOINT zanzi_write")
            )
            raise
        self._run(lambda: conn.execute("RELEASE SAVEPOINT zanzi_write"))

    def _apply(self, runs: list[tuple[Operation, list[tuple[Encoded, Relationship]]]]) -> None:
        for operation, items in runs:
            if operation is Operation.CREATE:
                self._create(items)
            elif operation is Operation.TOUCH:
                self._touch(items)
            else:
                self._delete_keys([enc for enc, _ in items])

    def _upsert(self, encoded: Sequence[Encoded], replace_when: str | None) -> tuple[set[Key], set[Key]]:
        """Insert a row for every key that is not live. With ``replace_when`` (a condition on
        the live row ``r`` and the new values ``u``), a live row of another transaction that
        meets it is retired instead (``ON CONFLICT DO UPDATE``, which in READ COMMITTED always
        acts on the newest committed version and keeps its row lock: nobody else can give the
        key a new live row before this transaction ends). Returns (inserted keys, retired keys).
        """
        params: dict[str, Any] = {**_batch_params(encoded), "xid": self._xid, "now": self._vis.now_us}
        action = "DO NOTHING"
        if replace_when is not None:
            action = (
                "DO UPDATE SET deleted_xid = %(xid)s::xid8 "
                f"WHERE r.created_xid <> %(xid)s::xid8 AND ({replace_when})"
            )
        sql = (
            f"INSERT INTO zanzi_relationships AS r ({COLUMNS}, created_xid) "
            f"SELECT u.rt, u.rid, u.rel, u.st, u.sid, u.srel, u.cn, u.cc, u.exp, %(xid)s::xid8 FROM {_BATCH} "
            f"ON CONFLICT ({_KEY}) WHERE deleted_xid IS NULL {action} "
            f"RETURNING {_KEY}, r.deleted_xid IS NULL"
        )
        rows = self._run(lambda: self._conn.execute(sql, params).fetchall())
        self._inserted = True
        inserted = {tuple(row[:6]) for row in rows if row[6]}
        retired = {tuple(row[:6]) for row in rows if not row[6]}
        return inserted, retired

    def _create(self, items: list[tuple[Encoded, Relationship]]) -> None:
        """CREATE: insert; a live row that has expired counts as absent and is replaced."""
        expired = "r.expiration IS NOT NULL AND r.expiration <= %(now)s"
        inserted, retired = self._upsert([enc for enc, _ in items], expired)
        pending = [(enc, rel) for enc, rel in items if enc[:6] not in inserted]
        for enc, rel in pending:
            if enc[:6] not in retired:
                # Live and unexpired, or an expired row this transaction created itself.
                row = self._run(functools.partial(self._live_expiration, enc))
                if row is not None and (row[0] is None or row[0] > self._vis.now_us):
                    raise exists_error(rel)
                self._retire([enc], "")
            if not self._upsert([enc], None)[0]:
                raise exists_error(rel)

    def _live_expiration(self, enc: Encoded) -> tuple[Any, ...] | None:
        """The expiration of the live row with ``enc``'s key (locked), if there is one."""
        row: tuple[Any, ...] | None = self._conn.execute(
            "SELECT expiration FROM zanzi_relationships WHERE resource_type = %s AND resource_id = %s "
            "AND relation = %s AND subject_type = %s AND subject_id = %s AND subject_relation = %s "
            "AND deleted_xid IS NULL FOR UPDATE",
            enc[:6],
        ).fetchone()
        return row

    def _retire(self, encoded: Sequence[Encoded], condition: str) -> set[Key]:
        """Delete the live rows with these keys (that also meet ``condition``); return the keys
        of the rows retired (own rows are removed outright)."""
        params: dict[str, Any] = {**_batch_params(encoded), "xid": self._xid}
        done: set[Key] = set()
        if self._inserted:
            rows = self._run(
                lambda: self._conn.execute(
                    f"DELETE FROM zanzi_relationships r USING {_BATCH} WHERE {_JOIN} {condition} "
                    f"AND r.created_xid = %(xid)s::xid8 RETURNING {_R_KEY}",
                    params,
                ).fetchall()
            )
            done.update(tuple(row) for row in rows)
        rows = self._run(
            lambda: self._conn.execute(
                f"UPDATE zanzi_relationships r SET deleted_xid = %(xid)s::xid8 FROM {_BATCH} "
                f"WHERE {_JOIN} {condition} AND r.created_xid <> %(xid)s::xid8 RETURNING {_R_KEY}",
                params,
            ).fetchall()
        )
        done.update(tuple(row) for row in rows)
        return done

    def _touch(self, items: list[tuple[Encoded, Relationship]]) -> None:
        """TOUCH: insert, or replace a live row whose caveat, context or expiration differ (an
        identical live row stays as it is)."""
        encoded = [enc for enc, _ in items]
        if self._inserted:  # own rows with other attributes are simply removed first
            params: dict[str, Any] = {**_batch_params(encoded), "xid": self._xid}
            self._run(
                lambda: self._conn.execute(
                    f"DELETE FROM zanzi_relationships r USING {_BATCH} WHERE {_JOIN} "
                    f"AND NOT ({_SAME_ATTRS}) AND r.created_xid = %(xid)s::xid8",
                    params,
                )
            )
        pending = encoded
        for _ in range(5):
            inserted, retired = self._upsert(pending, f"NOT ({_SAME_AS_NEW})")
            # Keys whose live row was retired get their new row now; the key is locked.
            pending = [enc for enc in pending if enc[:6] in retired]
            if not pending:
                return
        raise Unavailable("a relationship kept changing under concurrent writers; retry the write")

    def _delete_keys(self, encoded: Sequence[Encoded]) -> None:
        """DELETE by key. A key whose live row a concurrent writer was replacing (this statement
        waited for it, then found the old row gone) is looked up again with a fresh statement,
        so the delete, committing later, wins."""
        pending = list(encoded)
        for _ in range(3):
            done = self._retire(pending, "")
            pending = [enc for enc in pending if enc[:6] not in done]
            if not pending or not self._exists_live(pending):
                return

    def _exists_live(self, encoded: Sequence[Encoded]) -> bool:
        params: dict[str, Any] = _batch_params(encoded)
        row = self._run(
            lambda: self._conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM zanzi_relationships r, {_BATCH} WHERE {_JOIN})", params
            ).fetchone()
        )
        return bool(row and row[0])

    def delete(self, q: RelationshipQuery, *, limit: int | None = None) -> list[Relationship]:
        """Delete the live, unexpired relationships matching ``q`` (the first ``limit`` in
        sort order when a limit is given) and return them. The rows are locked first, so a
        concurrent writer cannot change them in between."""
        rows = self._run(lambda: self._select_for_delete(q, limit))
        own = [row[9] for row in rows if row[10]]
        others = [row[9] for row in rows if not row[10]]
        if others:
            self._run(
                lambda: self._conn.execute(
                    "UPDATE zanzi_relationships SET deleted_xid = %s::xid8 WHERE ctid = ANY(%s::tid[])",
                    (self._xid, others),
                )
            )
        if own:
            self._run(
                lambda: self._conn.execute(
                    "DELETE FROM zanzi_relationships WHERE ctid = ANY(%s::tid[])", (own,)
                )
            )
        return [decode(row) for row in rows]

    def _select_for_delete(self, q: RelationshipQuery, limit: int | None) -> list[tuple[Any, ...]]:
        extra = f", ctid::text, created_xid = '{int(self._xid)}'::xid8"
        return select_rows(
            self._conn,
            self._vis,
            q,
            limit=limit,
            after=None,
            ordered=limit is not None,
            extra=extra,
            lock=True,
        )

    def write_schema(self, text: str) -> None:
        self._check()
        if not isinstance(text, str):
            raise InvalidArgument("schema text must be a string")
        if "\x00" in text:
            raise InvalidArgument("schema text must not contain NUL characters")
        self._run(
            lambda: self._conn.execute(
                "DELETE FROM zanzi_schema WHERE revision IS NULL AND xid = %s::xid8", (self._xid,)
            )
        )
        self._run(
            lambda: self._conn.execute(
                "INSERT INTO zanzi_schema (revision, xid, text) VALUES (NULL, %s::xid8, %s)",
                (self._xid, text),
            )
        )
        self.schema_text = text

    def bulk_create(self, relationships: Iterable[Relationship]) -> int:
        """CREATE many relationships through ``COPY``, in batches of :data:`PAGE` rows (each its
        own savepoint). A batch that hits a live key (or repeats one) is redone with
        :meth:`write`, which creates over expired rows and names the relationship that exists."""
        count = 0
        iterator = iter(relationships)
        while True:
            batch = [normalize(rel) for rel in itertools.islice(iterator, PAGE * 20)]
            if not batch:
                return count
            try:
                self._savepoint(lambda batch=batch: self._copy(batch))  # type: ignore[misc]
            except Exception as exc:
                if not _is_unique_violation(exc):
                    raise
                for start in range(0, len(batch), PAGE):
                    self.write([Update(Operation.CREATE, rel) for rel in batch[start : start + PAGE]])
            count += len(batch)

    def _copy(self, batch: list[Relationship]) -> None:
        xid = str(self._xid)

        def copy() -> None:
            with (
                self._conn.cursor() as cursor,
                cursor.copy(f"COPY zanzi_relationships ({COLUMNS}, created_xid) FROM STDIN") as copier,
            ):
                for rel in batch:
                    copier.write_row((*encode(rel), xid))

        self._run(copy)
        self._inserted = True

    # lifecycle -----------------------------------------------------------------------------

    def finish(self) -> None:
        self._open = False

    def _check(self) -> None:
        if not self._open:
            raise Unavailable("this transaction has already ended")
        self._ds._check_open()


def _is_unique_violation(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == "23505":
            return True
        cause = cause.__cause__
    return False
