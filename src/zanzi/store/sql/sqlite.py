"""The SQLite datastore: MVCC relationship rows in one SQLite file, shared by threads and
processes.

URLs: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` and ``sqlite://:memory:``
(a private database in a temporary directory, on ``/dev/shm`` when there is one, deleted at
:meth:`~SQLiteDatastore.close`; SQLite's own ``:memory:`` databases cannot be shared by several
connections without table-level locking, which would make readers wait for the writer). Query
parameters set options: ``?synchronous=normal&busy_timeout=2&gc_window=3600``.

Connections. The database runs in WAL mode, so readers never block the writer and never see
uncommitted rows. Each thread reads through its own connection (thread-local, opened on first
use). Writes go through one writer connection guarded by a lock held for the whole transaction;
a transaction starts with ``BEGIN IMMEDIATE``, which also queues writers of other processes
(``busy_timeout``, default 5 s; past it the write fails with
:class:`~zanzi.errors.WriteConflict`, which is safe to retry).

Durability. ``synchronous=FULL`` by default: a revision handed out in a consistency token must
survive a power loss, or a later transaction would reuse its number with different contents.
``synchronous=NORMAL`` is still crash-safe for the process (a SIGKILL loses nothing committed)
and keeps the file consistent on power loss, but may lose the last commits; choose it when
writes are replayable.

Every :mod:`sqlite3` exception is translated into :mod:`zanzi.errors` (see
:func:`~zanzi.store.sql.sqlite_errors.translate`); none escape. Reads and writes live in
:mod:`zanzi.store.sql.sqlite_rw`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from zanzi.errors import (
    InvalidArgument,
    RevisionGarbageCollected,
    RevisionInFuture,
    Unavailable,
    ZanziError,
)
from zanzi.model import Relationship
from zanzi.store._support import (
    Clock,
    as_utc,
    check_limit,
    check_not_nested,
    from_micros,
    int_revision,
    parse_int_revision,
    resolve_clock,
    resolve_gc_window,
    to_micros,
)
from zanzi.store._support import assemble_changeset as _assemble
from zanzi.store.base import Capabilities, ChangeSet, Datastore, IntRevision, Reader, Revision, Writer
from zanzi.store.sql.common import Cursor, decode, load_migrations, run_migrations
from zanzi.store.sql.sqlite_errors import DRIVER_ERRORS, driver_errors, translate
from zanzi.store.sql.sqlite_rw import COLUMNS, SQLiteReader, SQLiteWriter

__all__ = ["SQLiteDatastore", "open_sqlite", "parse_sqlite_url", "translate"]

T = TypeVar("T")

#: Revisions per page of :meth:`SQLiteDatastore.changes`.
CHANGES_PAGE = 256
#: Rows removed per garbage-collection transaction.
GC_BATCH = 5_000

_SYNCHRONOUS = ("off", "normal", "full", "extra")
_OPTIONS = frozenset({"gc_window", "clock", "synchronous", "busy_timeout", "poll_interval"})


def _min_valid(conn: sqlite3.Connection, cutoff_us: int) -> int:
    """The oldest revision still valid at ``cutoff_us`` (= now - gc_window): the one that was
    the newest at the cutoff, i.e. the predecessor of the first revision committed at or after
    it; the head if nothing was committed since."""
    head = int(conn.execute("SELECT max(revision) FROM transactions").fetchone()[0])
    row = conn.execute(
        "SELECT revision FROM transactions WHERE timestamp >= ? ORDER BY timestamp, revision LIMIT 1",
        (cutoff_us,),
    ).fetchone()
    return head if row is None else min(int(row[0]) - 1, head)


# -- URLs -------------------------------------------------------------------------------------


def parse_sqlite_url(url: str) -> tuple[str | None, dict[str, str]]:
    """Split a ``sqlite://`` URL into a file path (``None`` for ``:memory:``) and its query
    options. Raises :class:`~zanzi.errors.InvalidArgument` for anything else."""
    prefix = "sqlite://"
    if not isinstance(url, str) or url[: len(prefix)].lower() != prefix:
        raise InvalidArgument(f"not a SQLite datastore URL: {url!r} (expected sqlite:///path.db)")
    rest, _, query = url[len(prefix) :].partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise InvalidArgument(f"malformed query string in SQLite URL: {query!r}") from None
    if rest in (":memory:", "/:memory:"):
        return None, options
    if not rest.startswith("/"):
        raise InvalidArgument(
            f"SQLite URL {url!r} names a host; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = unquote(rest[1:])
    if not path or path.endswith("/"):
        raise InvalidArgument(f"SQLite URL {url!r} has no file name")
    return path, options


def open_sqlite(url: str, **options: Any) -> SQLiteDatastore:
    """Open (creating and migrating if needed) the SQLite datastore at ``url``.

    Options (keyword or URL query): ``gc_window`` (timedelta or seconds), ``clock``,
    ``synchronous`` (``full`` by default, or ``normal``/``extra``/``off``), ``busy_timeout``
    (seconds, default 5), ``poll_interval`` (seconds between head polls in
    :meth:`~SQLiteDatastore.wait_for_change`, default 0.05). Raises
    :class:`~zanzi.errors.InvalidArgument` for a bad URL or option,
    :class:`~zanzi.errors.Unavailable` if the file cannot be opened and
    :class:`~zanzi.errors.FailedPrecondition` if it was written by a newer Zanzi.
    """
    path, url_options = parse_sqlite_url(url)
    merged: dict[str, Any] = {**url_options, **options}
    unknown = set(merged) - _OPTIONS
    if unknown:
        raise InvalidArgument(
            f"unknown SQLite datastore options: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_OPTIONS))})"
        )
    return SQLiteDatastore(path, **merged)


def _seconds(name: str, value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise InvalidArgument(f"{name} must not be negative, got {value!r}")
    return seconds


def _temporary_dir() -> str:
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="zanzi-sqlite-", dir=base)


# -- the datastore ----------------------------------------------------------------------------


class SQLiteDatastore(Datastore):
    """A revisioned relationship store in a SQLite file; see the module docstring."""

    def __init__(
        self,
        path: str | None,
        *,
        gc_window: object = None,
        clock: object = None,
        synchronous: object = None,
        busy_timeout: object = None,
        poll_interval: object = None,
    ) -> None:
        self.gc_window = resolve_gc_window(gc_window)
        self._clock: Clock = resolve_clock(clock)
        mode = "full" if synchronous is None else str(synchronous).lower()
        if mode not in _SYNCHRONOUS:
            raise InvalidArgument(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self._synchronous = mode
        self._busy_timeout = _seconds("busy_timeout", busy_timeout, 5.0)
        self._poll_interval = max(_seconds("poll_interval", poll_interval, 0.05), 0.001)
        self._closed = False
        self._readers: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._owner: int | None = None  # the thread holding the write lock
        self._committed = threading.Condition(threading.Lock())
        self._known_head = 0
        self._cleanup: weakref.finalize[Any, Any] | None = None
        if path is None:
            directory = _temporary_dir()
            self._cleanup = weakref.finalize(self, shutil.rmtree, directory, True)
            path = os.path.join(directory, "zanzi.db")
            self.capabilities = Capabilities(persistent=False, concurrent_writers=False, watch=True)
            self._name = "sqlite://:memory:"
        else:
            self.capabilities = Capabilities(
                persistent=True, concurrent_writers=True, watch=True, multi_process=True
            )
            self._name = f"sqlite:///{path}"
        self.path = path
        try:
            self._writer = self._connect()
            # The writer's page cache at 64 MiB (SQLite's default is 2 MiB): a bulk import into a
            # large store keeps the index pages it updates in memory (1M rows: ~20% faster).
            self._writer.execute("PRAGMA cache_size = -65536")
            self._setup()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteDatastore({self._name!r})"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A new connection with the datastore's pragmas (not tracked: the caller owns it)."""
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN / COMMIT ourselves
                check_same_thread=False,  # close() may run on another thread
                cached_statements=256,
            )
        except DRIVER_ERRORS as exc:
            raise Unavailable(f"cannot open the SQLite database {self.path!r}: {exc}") from exc
        with driver_errors():
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            except BaseException:
                conn.close()
                raise
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, opened on first use and closed when the thread ends
        (its thread-local holder is dropped) or at :meth:`close`."""
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            self._check_open()
            holder = _Holder(self._connect())
            with self._conns_lock:
                self._check_open()
                self._readers.add(holder)
            self._local.holder = holder
        return holder.conn

    def _setup(self) -> None:
        migrations = load_migrations("sqlite", sqlite3.complete_statement)
        with driver_errors(writing=True):
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise Unavailable(f"could not switch {self._name} to WAL mode (journal_mode is {mode})")
            run_migrations(
                self._writer,
                migrations,
                database=self._name,
                begin="BEGIN IMMEDIATE",
                on_transaction=self._bootstrap,
            )
            rows = dict(self._writer.execute("SELECT key, value FROM metadata").fetchall())
        self._id = str(rows["datastore_id"])
        self._secret = bytes(rows["token_secret"])

    def _bootstrap(self, cursor: Cursor) -> None:
        """Write the datastore id, token secret and genesis revision once (idempotent)."""
        cursor.execute(
            "INSERT OR IGNORE INTO metadata (key, value) VALUES ('datastore_id', ?)", (str(uuid.uuid4()),)
        )
        cursor.execute(
            "INSERT OR IGNORE INTO metadata (key, value) VALUES ('token_secret', ?)",
            (secrets.token_bytes(32),),
        )
        cursor.execute(
            "INSERT INTO transactions (timestamp, schema_changed) "
            "SELECT ?, 0 WHERE NOT EXISTS (SELECT 1 FROM transactions)",
            (to_micros(self._clock()),),
        )

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` inside one read transaction on this thread's connection (so all its
        statements see one database state), translating driver errors."""
        self._check_open()
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                result = fn(conn)
            except BaseException:
                self._abort(conn)
                raise
            conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            self._abort(conn)
            raise translate(exc) from exc
        return result

    def _note_head(self, value: int) -> None:
        with self._committed:
            if value > self._known_head:
                self._known_head = value
                self._committed.notify_all()

    # -- identity ---------------------------------------------------------------------------

    @property
    def datastore_id(self) -> str:
        return self._id

    @property
    def token_secret(self) -> bytes:
        return self._secret

    # -- revisions --------------------------------------------------------------------------

    def _head_value(self) -> int:
        self._check_open()
        try:  # one statement is its own read transaction
            value = int(self._reader().execute("SELECT max(revision) FROM transactions").fetchone()[0])
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        self._note_head(value)
        return value

    def head_revision(self) -> IntRevision:
        return IntRevision(self._head_value())

    def parse_revision(self, text: str) -> IntRevision:
        return parse_int_revision(text)

    def check_revision(self, revision: Revision) -> None:
        """Valid revisions are the head and every revision that was still the newest at some
        instant inside the GC window (its successor committed at or after
        ``now - gc_window``): exactly the snapshots that :meth:`garbage_collect` preserves.
        So an idle store does not invalidate outstanding tokens at its next write."""
        value = int_revision(revision)

        def lookup(c: sqlite3.Connection) -> tuple[int, int | None]:
            head = int(c.execute("SELECT max(revision) FROM transactions").fetchone()[0])
            row = c.execute("SELECT timestamp FROM transactions WHERE revision = ?", (value + 1,)).fetchone()
            return head, None if row is None else int(row[0])

        head, successor = self._read(lookup)
        self._note_head(head)
        if value > head:
            raise RevisionInFuture(f"revision {value} is newer than the head revision {head}")
        if value == head:
            return
        cutoff = to_micros(self._clock() - self.gc_window)
        if value < 1 or successor is None or successor < cutoff:
            raise RevisionGarbageCollected(
                f"revision {value} is older than the garbage-collection window ({self.gc_window})"
            )

    # -- reads ------------------------------------------------------------------------------

    def snapshot(self, revision: Revision, *, now: datetime | None = None) -> Reader:
        """A reader at ``revision``; raises :class:`RevisionInFuture` past the head. It does
        not check the GC window: call :meth:`check_revision` first for client tokens."""
        self._check_open()
        value = int_revision(revision)
        if value > self._known_head and value > self._head_value():
            raise RevisionInFuture(f"revision {value} is newer than the head revision {self._known_head}")
        now_us = to_micros(as_utc(now) if now is not None else self._clock())
        return SQLiteReader(self, value, now_us)

    # -- writes -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """See :meth:`Datastore.transaction`. Raises :class:`~zanzi.errors.WriteConflict` if
        another process holds the write lock past ``busy_timeout``, and
        :class:`~zanzi.errors.FailedPrecondition` if this thread already has a transaction open
        (instead of deadlocking)."""
        self._check_open()
        check_not_nested(self._owner)
        with self._write_lock:
            self._check_open()
            self._owner = threading.get_ident()
            try:
                revision = yield from self._transaction()
            finally:
                self._owner = None
        self._note_head(revision)

    def _transaction(self) -> Generator[Writer, None, int]:
        """The body of :meth:`transaction`; the caller holds the write lock."""
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute(
                "SELECT timestamp FROM transactions ORDER BY revision DESC LIMIT 1"
            ).fetchone()
            begin_us = max(to_micros(self._clock()), int(last[0]) if last else 0)
            cursor = conn.execute(
                "INSERT INTO transactions (timestamp, schema_changed) VALUES (?, 0)", (begin_us,)
            )
            revision = int(cursor.lastrowid or 0)
        except DRIVER_ERRORS as exc:
            self._abort(conn)
            raise translate(exc, writing=True) from exc
        writer = SQLiteWriter(self, conn, revision, begin_us)
        try:
            yield writer
            writer._finish()
            with driver_errors(writing=True):
                conn.execute(
                    "UPDATE transactions SET timestamp = max(timestamp, ?), schema_changed = ? "
                    "WHERE revision = ?",
                    (to_micros(self._clock()), int(writer._schema_changed), revision),
                )
                conn.execute("COMMIT")
        except BaseException:
            writer._finish()
            self._abort(conn)
            raise
        return revision

    @staticmethod
    def _abort(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(*DRIVER_ERRORS):
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # -- changes ----------------------------------------------------------------------------

    def changes(self, after: Revision, *, limit: int | None = None) -> Iterator[ChangeSet]:
        """See :meth:`Datastore.changes`. The last revision listed is the head at the call;
        pages of revisions are read lazily, each in one read transaction."""
        self.check_revision(after)
        check_limit(limit)
        return self._iter_changes(int_revision(after), self._known_head, limit)

    def _iter_changes(self, after: int, head: int, limit: int | None) -> Iterator[ChangeSet]:
        remaining = limit
        while remaining is None or remaining > 0:
            page = CHANGES_PAGE if remaining is None else min(CHANGES_PAGE, remaining)
            sets = self._read(functools.partial(self._changes_page, after=after, head=head, page=page))
            if not sets:
                return
            yield from sets
            after = int_revision(sets[-1].revision)
            if remaining is not None:
                remaining -= len(sets)

    @staticmethod
    def _changes_page(conn: sqlite3.Connection, after: int, head: int, page: int) -> list[ChangeSet]:
        txns = conn.execute(
            "SELECT revision, timestamp, schema_changed FROM transactions "
            "WHERE revision > ? AND revision <= ? ORDER BY revision LIMIT ?",
            (after, head, page),
        ).fetchall()
        if not txns:
            return []
        if txns[0][0] != after + 1:
            raise RevisionGarbageCollected(
                f"revision {after + 1} was garbage-collected while listing changes"
            )
        low, high = txns[0][0], txns[-1][0]
        created: dict[int, list[Relationship]] = {}
        deleted: dict[int, list[Relationship]] = {}
        for row in conn.execute(
            f"SELECT created_rev, {COLUMNS} FROM relationships WHERE created_rev BETWEEN ? AND ?",
            (low, high),
        ):
            created.setdefault(row[0], []).append(decode(row[1:]))
        for row in conn.execute(
            f"SELECT deleted_rev, {COLUMNS} FROM relationships WHERE deleted_rev BETWEEN ? AND ?",
            (low, high),
        ):
            deleted.setdefault(row[0], []).append(decode(row[1:]))
        return [
            _assemble(
                IntRevision(rev), from_micros(ts), bool(flag), created.get(rev, ()), deleted.get(rev, ())
            )
            for rev, ts, flag in txns
        ]

    def wait_for_change(self, after: Revision, timeout: float) -> bool:
        """Wait for a commit after ``after``: woken at once by commits of this process, and
        polling the head every ``poll_interval`` for commits of other processes."""
        value = int_revision(after)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._closed:
                return False
            if self._known_head > value or self._head_value() > value:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._committed:
                if self._known_head <= value and not self._closed:
                    self._committed.wait(min(remaining, self._poll_interval))

    # -- garbage collection -----------------------------------------------------------------

    def garbage_collect(self, *, now: datetime | None = None) -> int:
        """Remove, in transactions of at most :data:`GC_BATCH` rows: relationship rows deleted
        at or before the oldest valid revision (see :meth:`check_revision`); live rows created
        by then that expired before ``now - gc_window``; schema versions superseded by then;
        and transaction records older than it. Returns the number of rows removed."""
        self._check_open()
        cutoff_us = to_micros((as_utc(now) if now is not None else self._clock()) - self.gc_window)
        statements = (
            "DELETE FROM relationships WHERE rowid IN "
            "(SELECT rowid FROM relationships WHERE deleted_rev <= :min_valid LIMIT :batch)",
            "DELETE FROM relationships WHERE rowid IN (SELECT rowid FROM relationships "
            "WHERE expiration < :cutoff AND deleted_rev IS NULL AND created_rev <= :min_valid LIMIT :batch)",
            "DELETE FROM schema_versions WHERE created_rev < "
            "(SELECT max(created_rev) FROM schema_versions WHERE created_rev <= :min_valid)",
            "DELETE FROM transactions WHERE revision IN "
            "(SELECT revision FROM transactions WHERE revision < :min_valid LIMIT :batch)",
        )
        removed = 0
        for statement in statements:
            while True:
                count = self._gc_step(statement, cutoff_us)
                removed += count
                if count < GC_BATCH:
                    break
        return removed

    def _gc_step(self, statement: str, cutoff_us: int) -> int:
        check_not_nested(self._owner)
        with self._write_lock:
            self._check_open()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                params = {"min_valid": _min_valid(conn, cutoff_us), "cutoff": cutoff_us, "batch": GC_BATCH}
                used = {name: value for name, value in params.items() if f":{name}" in statement}
                count = conn.execute(statement, used).rowcount
                conn.execute("COMMIT")
            except DRIVER_ERRORS as exc:
                self._abort(conn)
                raise translate(exc, writing=True) from exc
        return max(count, 0)

    # -- lifecycle --------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when the database answers a trivial query."""
        if self._closed:
            return False
        try:
            self._head_value()
        except ZanziError:
            return False
        return True

    def close(self) -> None:
        """Close every connection (waiting up to ``busy_timeout`` for a running transaction)
        and, for ``:memory:``, delete the temporary database. Idempotent."""
        if self._closed:
            return
        with self._committed:
            self._closed = True
            self._committed.notify_all()
        locked = self._write_lock.acquire(timeout=self._busy_timeout)
        try:
            writer = getattr(self, "_writer", None)
            if writer is not None:
                with contextlib.suppress(*DRIVER_ERRORS):
                    writer.execute("PRAGMA optimize")
            with self._conns_lock:
                conns = [holder.conn for holder in self._readers]
                self._readers.clear()
            if writer is not None:
                conns.append(writer)
            for conn in conns:
                with contextlib.suppress(*DRIVER_ERRORS):
                    conn.close()
        finally:
            if locked:
                self._write_lock.release()
        if self._cleanup is not None:
            self._cleanup()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the datastore is closed")


class _Holder:
    """Owns one thread's read connection; closes it when garbage-collected."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        weakref.finalize(self, _close_quietly, conn)


def _close_quietly(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(*DRIVER_ERRORS):
        conn.close()
