"""The PostgreSQL datastore: MVCC relationship rows shared by any number of threads, processes
and machines, with read replicas.

URLs: ``postgresql://user:password@host:port/dbname`` (or ``postgres://``). libpq's own query
parameters pass through (``?sslmode=require&options=-csearch_path%3Dauthz``: the tables go into
the first schema of the search path); Zanzi's options may also be given in the query. The
database must be migrated first: ``zanzi migrate --datastore URL`` (or ``migrate=True``).

Revisions: serialized commits, snapshot reads
=============================================

PostgreSQL assigns transaction ids when transactions start, but concurrent transactions commit
in any order, and nothing cheap records the commit order. So "the rows with created_xid <= X"
is not a snapshot (a transaction with a lower xid may commit later), and a snapshot taken inside
a transaction (what SpiceDB records) does not tell which concurrent transactions committed just
before it. Yet the contract asks for exactly that: every transaction gets its own revision,
revisions are totally ordered, and a read at revision R sees exactly the transactions committed
at or before R.

This backend therefore **orders the commits, not the transactions**. A write transaction runs
concurrently with every other one (READ COMMITTED, row locks only where keys collide) until its
very last step, which is one round trip::

    UPDATE zanzi_clock SET revision = revision + 1 ...          -- takes the clock row lock
    INSERT INTO zanzi_transactions (revision, xid, snapshot ...) -- pg_current_snapshot(), taken
        SELECT revision, pg_current_xact_id(), pg_current_snapshot() ... FROM zanzi_clock
    COMMIT                                                        -- releases the lock

Why this is correct:

1. *Revision order is commit order.* A row lock is released only after the commit is durable
   and visible (PostgreSQL makes the transaction visible in the proc array before it releases
   its locks). The next committer waits for the lock, so it commits strictly later and, under
   READ COMMITTED, re-reads the incremented row: revisions are dense, and R < R' exactly when R
   committed first. Reading ``zanzi_clock`` in any statement gives a revision whose
   transactions, and all earlier ones, are visible to that statement.
2. *The snapshot of R is exact.* The INSERT is a new statement, so its ``pg_current_snapshot()``
   is taken after the lock was granted: every transaction of a revision < R is committed and
   visible in it, and no transaction of a revision > R can be (they commit after R). Marking
   R's own xid complete (the snapshot never lists the caller's own xid as visible) gives S_R,
   whose visible set, restricted to Zanzi's transactions, is exactly the revisions <= R.
   Transactions of other applications, aborted ones and unassigned ids never appear in the
   xid columns, so they do not matter.
3. *Reads.* A read at R keeps the rows whose ``created_xid`` is visible in S_R and whose
   ``deleted_xid`` is not (``pg_visible_in_snapshot``). The statement's own MVCC snapshot is
   taken after R was known committed, so it contains every row version R needs; versions of
   later or in-flight transactions are filtered by S_R. So a read never sees a later
   transaction, nor part of one, and it gives the same answer on every process and on any
   replica that has replayed R (WAL replays commits in the same order).
4. *The changelog* lists ``zanzi_transactions`` in revision order; revisions are dense, so a
   watcher that has read up to R asks for R + 1, which is exactly the next commit, even when it
   carries an older xid than commits the watcher has already seen.

The price is that only one Zanzi transaction can be *inside its commit* at a time: the
critical section is one statement pair plus the commit's WAL flush (one network round trip from
the client, none inside it), not the transaction. Writes therefore top out near
1 / (WAL flush time) commits per second per database (thousands per second on SSD storage;
measured in ``tests/postgres``), while reads, and the body of write transactions, run fully in
parallel. Authorization workloads write orders of magnitude less than they read, and exactness
(tokens that mean the same thing on every node, a gap-free Watch) is what they need.

Write transactions use READ COMMITTED: a serializable transaction could not take the shared
clock row without failing at every concurrent commit. Each statement sees the newest committed
state plus the transaction's own writes; concurrent writers of one key are serialized by the
live-key unique index and row locks (the later TOUCH wins).

Checks that a write depends on. A precondition, or a schema change's check that no stored
relationship would be orphaned, must still hold when the transaction commits, not only when it
ran: a concurrent writer could commit in between (two "create unless one exists" writes both
succeeding). Such transactions call ``hold_commits``, which takes the clock row lock before the
check: no other Zanzi transaction can commit until this one ends, so every later statement of
it sees the state its commit follows. And a transaction that validated relationships against
the schema it read carries that schema's revision into its commit, where a guard (run under the
clock lock) fails it with serialization_failure (a retryable WriteConflict) if a newer schema
committed meanwhile. Holding the clock early can meet a writer that holds a row this
transaction needs and waits for the clock at its commit: PostgreSQL detects that deadlock and
fails one of them, also as a retryable WriteConflict.

Faults. Reads (idempotent) are retried on a fresh connection after a lost connection, a
server restart or a recovery conflict on a replica. A write transaction whose connection fails
before COMMIT was certainly rolled back: :class:`~zanzi.errors.Unavailable` (or
:class:`~zanzi.errors.WriteConflict` for a serialization failure or deadlock), safe to retry.
When the connection fails during the commit round trip, the outcome is looked up by xid
(``pg_xact_status``) and by a random nonce the commit wrote beside its revision (after a crash,
PostgreSQL hands xids that never reached its WAL to later transactions, so the xid alone could
name someone else's commit): our committed transaction returns its revision normally, an
aborted one (or a lost one whose xid another transaction now holds) raises; if the database
cannot tell in time, :class:`~zanzi.errors.Unavailable` says the outcome is unknown. While the
server is unreachable, requests fail at once instead of queueing (see
:mod:`zanzi.store.sql.postgres_conn`). Every psycopg exception is translated by
:mod:`zanzi.store.sql.postgres_errors`; none escape.

Reads and writes live in :mod:`zanzi.store.sql.postgres_rw`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from zanzi.errors import (
    InvalidArgument,
    RevisionGarbageCollected,
    RevisionInFuture,
    Unavailable,
    WriteConflict,
    ZanziError,
)
from zanzi.store._support import (
    Clock,
    as_utc,
    check_limit,
    check_not_nested,
    int_revision,
    parse_int_revision,
    resolve_clock,
    resolve_gc_window,
    to_micros,
)
from zanzi.store.base import Capabilities, ChangeSet, Datastore, IntRevision, Reader, Revision, Writer
from zanzi.store.sql import postgres_migrate
from zanzi.store.sql.common import load_migrations
from zanzi.store.sql.postgres_conn import (
    Connection,
    Listener,
    PostgresURL,
    Server,
    bool_option,
    int_option,
    merged_options,
    parse_postgres_url,
    replica_list,
    seconds_option,
)
from zanzi.store.sql.postgres_errors import DRIVER_ERRORS, is_connection_error, is_transient, translate
from zanzi.store.sql.postgres_history import changes_page, gc_statements, mark_complete, min_valid_revision
from zanzi.store.sql.postgres_rw import PostgresReader, PostgresWriter

__all__ = ["PostgresDatastore", "migrate_postgres", "open_postgres"]

T = TypeVar("T")

_OPTIONS = frozenset(
    {
        "gc_window",
        "clock",
        "pool_min_size",
        "pool_max_size",
        "acquire_timeout",
        "connect_timeout",
        "poll_interval",
        "read_replicas",
        "migrate",
    }
)
#: Attempts of an idempotent read (or of starting a transaction) on transient failures.
READ_ATTEMPTS = 3
#: Revisions per page of :meth:`PostgresDatastore.changes`.
CHANGES_PAGE = 256
#: Seconds to resolve the outcome of a commit whose acknowledgement was lost.
COMMIT_RESOLVE_TIMEOUT = 10.0
#: Seconds between two progress checks of a lagging replica.
REPLICA_CHECK_INTERVAL = 0.05
_SNAPSHOT_CACHE = 4096


# -- opening and migrating ----------------------------------------------------------------------


def open_postgres(url: str, **options: Any) -> PostgresDatastore:
    """Open the PostgreSQL datastore at ``url``.

    Options (keyword, or URL query where a string fits): ``gc_window`` (timedelta or seconds,
    default 24 h), ``clock`` (tests), ``pool_min_size`` (default 1) and ``pool_max_size``
    (default 10) per server, ``acquire_timeout`` (seconds to wait for a pooled connection,
    default 5), ``connect_timeout`` (seconds, default 5), ``poll_interval`` (seconds between
    head polls of :meth:`~PostgresDatastore.wait_for_change` when notifications are not
    arriving, default 0.5), ``read_replicas`` (list of URLs), ``migrate`` (apply pending
    migrations first, default false).

    Raises :class:`~zanzi.errors.InvalidArgument` for a bad URL or option,
    :class:`~zanzi.errors.Unavailable` if the database cannot be reached and
    :class:`~zanzi.errors.FailedPrecondition` if it is not migrated (run ``zanzi migrate``) or
    was migrated by a newer Zanzi.
    """
    parsed = parse_postgres_url(url, _OPTIONS)
    merged = merged_options(parsed.options, options, _OPTIONS)
    return PostgresDatastore(parsed, **merged)


def migrate_postgres(url: str, **options: Any) -> int:
    """Create or upgrade the Zanzi tables at ``url``; return the schema version. Safe to run
    again and from several processes at once (an advisory lock queues them)."""
    with open_postgres(url, **{**options, "migrate": True, "pool_max_size": 1}):
        pass
    return len(load_migrations("postgres"))


def _clock_revision(conn: Connection) -> int:
    row = conn.execute("SELECT revision FROM zanzi_clock").fetchone()
    if row is None:
        raise Unavailable("the zanzi_clock row is missing; run `zanzi migrate --datastore URL`")
    return int(row[0])


# -- the datastore ----------------------------------------------------------------------------


class PostgresDatastore(Datastore):
    """See the module docstring. Thread-safe; every process on the same database shares its
    revisions, tokens (``datastore_id`` and ``token_secret`` live in ``zanzi_metadata``) and
    changelog."""

    capabilities = Capabilities(persistent=True, concurrent_writers=True, watch=True, multi_process=True)

    def __init__(
        self,
        url: PostgresURL,
        *,
        gc_window: object = None,
        clock: object = None,
        pool_min_size: object = None,
        pool_max_size: object = None,
        acquire_timeout: object = None,
        connect_timeout: object = None,
        poll_interval: object = None,
        read_replicas: object = None,
        migrate: object = None,
    ) -> None:
        self.gc_window = resolve_gc_window(gc_window)
        self._clock: Clock = resolve_clock(clock)
        min_size = int_option("pool_min_size", pool_min_size, 1)
        max_size = int_option("pool_max_size", pool_max_size, 10, minimum=1)
        if min_size > max_size:
            raise InvalidArgument(f"pool_min_size ({min_size}) is larger than pool_max_size ({max_size})")
        acquire = seconds_option("acquire_timeout", acquire_timeout, 5.0, minimum=0.1)
        connect = seconds_option("connect_timeout", connect_timeout, 5.0, minimum=1.0)
        self._poll_interval = seconds_option("poll_interval", poll_interval, 0.5, minimum=0.01)
        replicas = [parse_postgres_url(u, frozenset()) for u in replica_list(read_replicas)]
        self._name = url.display
        self._closed = False
        self._local = threading.local()
        self._committed = threading.Condition(threading.Lock())
        self._known_head = 0
        self._snapshots: OrderedDict[int, str] = OrderedDict()
        self._snapshots_lock = threading.Lock()
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        self._next_replica = 0
        self._replica_checked: dict[int, float] = {}
        self.read_counts: dict[str, int] = {}

        def server(u: PostgresURL, replica: bool = False) -> Server:
            return Server(
                u.conninfo, u.display, min_size=min_size, max_size=max_size,
                acquire_timeout=acquire, connect_timeout=connect, start_down=replica,
            )  # fmt: skip

        self._primary = server(url)
        self._replicas: list[Server] = []
        try:
            self._replicas = [server(u, replica=True) for u in replicas]
            self._primary.wait_open()
            with self._primary.connection() as conn:
                try:
                    if bool_option("migrate", migrate, False):
                        postgres_migrate.migrate(conn, self._name, self._clock)
                    postgres_migrate.check_version(conn, self._name)
                    rows = dict(conn.execute("SELECT key, value FROM zanzi_metadata").fetchall())
                except DRIVER_ERRORS as exc:
                    raise translate(exc, writing=True) from exc
            self._id = bytes(rows["datastore_id"]).decode()
            self._secret = bytes(rows["token_secret"])
            self._channel = "zanzi_" + self._id.replace("-", "")
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresDatastore({self._name!r})"

    # -- connections ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the datastore is closed")

    def _read(self, fn: Callable[[Connection], T], revision: int | None = None) -> T:
        """Run the idempotent ``fn`` on a pooled connection: of a replica that has replayed
        ``revision`` if there is one, else of the primary. Transient failures are retried
        (:data:`READ_ATTEMPTS` in all); driver errors are translated."""
        attempt = 1
        while True:
            self._check_open()
            server = self._route(revision)
            try:
                with server.connection() as conn:
                    result = fn(conn)
            except DRIVER_ERRORS as exc:
                server.mark_failed(exc)
                if attempt < READ_ATTEMPTS and is_transient(exc) and not self._closed:
                    attempt += 1
                    time.sleep(0.01 * attempt)
                    continue
                raise translate(exc) from exc
            self.read_counts[server.name] = self.read_counts.get(server.name, 0) + 1
            return result

    def _route(self, revision: int | None) -> Server:
        """The server for a read at ``revision``: a replica that is known (or now found) to
        have replayed it, else the primary."""
        if revision is None or not self._replicas:
            return self._primary
        count = len(self._replicas)
        start = self._next_replica
        self._next_replica = (start + 1) % count
        for i in range(count):
            index = (start + i) % count
            replica = self._replicas[index]
            if replica.reached >= revision and not replica.down:
                return replica
            now = time.monotonic()
            if now - self._replica_checked.get(index, 0.0) < REPLICA_CHECK_INTERVAL:
                continue
            self._replica_checked[index] = now
            try:
                with replica.connection() as conn:
                    row = conn.execute("SELECT revision FROM zanzi_clock").fetchone()
            except ZanziError:
                continue  # down and still unreachable
            except DRIVER_ERRORS as exc:
                replica.mark_failed(exc)
                continue
            replica.reached = max(replica.reached, int(row[0]) if row else 0)
            if replica.reached >= revision:
                return replica
        return self._primary

    # -- identity ---------------------------------------------------------------------------

    @property
    def datastore_id(self) -> str:
        return self._id

    @property
    def token_secret(self) -> bytes:
        return self._secret

    # -- revisions --------------------------------------------------------------------------

    def _note_head(self, value: int) -> None:
        with self._committed:
            if value > self._known_head:
                self._known_head = value
                self._committed.notify_all()

    def _head_value(self) -> int:
        value = self._read(_clock_revision)
        self._note_head(value)
        return value

    def head_revision(self) -> IntRevision:
        """The newest committed revision, read from the primary."""
        return IntRevision(self._head_value())

    def parse_revision(self, text: str) -> IntRevision:
        return parse_int_revision(text)

    def check_revision(self, revision: Revision) -> None:
        """Valid revisions are the head and every revision that was still the newest at some
        instant inside the GC window (its successor committed at or after ``now - gc_window``):
        exactly the snapshots that :meth:`garbage_collect` preserves."""
        value = int_revision(revision)

        def lookup(c: Connection) -> tuple[int, int | None]:
            row = c.execute(
                "SELECT (SELECT revision FROM zanzi_clock), "
                "(SELECT timestamp FROM zanzi_transactions WHERE revision = %s)",
                (value + 1,),
            ).fetchone()
            assert row is not None
            return int(row[0]), None if row[1] is None else int(row[1])

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

    def _snapshot_of(self, revision: int) -> str:
        """S_revision (see the module docstring), from a small cache or the database."""
        with self._snapshots_lock:
            cached = self._snapshots.get(revision)
            if cached is not None:
                self._snapshots.move_to_end(revision)
                return cached
        row = self._read(
            lambda c: c.execute(
                "SELECT xid::text, snapshot::text FROM zanzi_transactions WHERE revision = %s", (revision,)
            ).fetchone(),
            revision,
        )
        if row is None:
            if revision > self._head_value():
                raise RevisionInFuture(
                    f"revision {revision} is newer than the head revision {self._known_head}"
                )
            raise RevisionGarbageCollected(f"revision {revision} has been garbage-collected")
        snapshot = mark_complete(str(row[1]), int(row[0]))
        with self._snapshots_lock:
            self._snapshots[revision] = snapshot
            while len(self._snapshots) > _SNAPSHOT_CACHE:
                self._snapshots.popitem(last=False)
        return snapshot

    # -- reads ------------------------------------------------------------------------------

    def snapshot(self, revision: Revision, *, now: datetime | None = None) -> Reader:
        """A reader at ``revision``; raises :class:`RevisionInFuture` past the head. It does
        not check the GC window: call :meth:`check_revision` first for client tokens."""
        self._check_open()
        value = int_revision(revision)
        if value > self._known_head and value > self._head_value():
            raise RevisionInFuture(f"revision {value} is newer than the head revision {self._known_head}")
        now_us = to_micros(as_utc(now) if now is not None else self._clock())
        return PostgresReader(self, value, self._snapshot_of(value), now_us)

    # -- writes -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """See :meth:`Datastore.transaction` and the module docstring. Raises
        :class:`~zanzi.errors.FailedPrecondition` if this thread already has a transaction open
        on this datastore (instead of deadlocking against itself)."""
        self._check_open()
        check_not_nested(threading.get_ident() if getattr(self._local, "open", False) else None)
        pool, conn, xid = self._begin()
        self._local.open = True
        writer = PostgresWriter(self, conn, xid, to_micros(self._clock()), self._writer_error)
        try:
            try:
                yield writer
            except BaseException:
                writer.finish()
                self._rollback(conn)
                raise
            writer.finish()
            revision = self._commit(conn, xid, writer.schema_text is not None, writer.schema_seen)
        finally:
            self._local.open = False
            self._primary.release(pool, conn)
        writer.revision = IntRevision(revision)
        self._note_head(revision)

    def _begin(self) -> tuple[Any, Connection, int]:
        """A connection in a new transaction with its xid assigned (retried on transient
        failures: nothing has happened yet)."""
        attempt = 1
        while True:
            self._check_open()
            pool, conn = self._primary.acquire()
            try:
                cursor = conn.execute(
                    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_current_xact_id()::text"
                )
                cursor.nextset()
                row = cursor.fetchone()
                assert row is not None
                return pool, conn, int(row[0])
            except DRIVER_ERRORS as exc:
                self._rollback(conn)
                self._primary.release(pool, conn)
                self._primary.mark_failed(exc)
                if attempt < READ_ATTEMPTS and is_transient(exc):
                    attempt += 1
                    time.sleep(0.01 * attempt)
                    continue
                raise translate(exc, writing=True) from exc
            except BaseException:
                self._primary.release(pool, conn)
                raise

    def _writer_error(self, exc: BaseException) -> Exception:
        """The error for a failed statement inside a write transaction (not yet committed)."""
        if is_connection_error(exc):
            self._primary.mark_failed(exc)
            return Unavailable(
                "lost the connection to PostgreSQL during the transaction; it was not committed "
                f"(safe to retry): {exc}"
            )
        return translate(exc, writing=True)

    @staticmethod
    def _rollback(conn: Connection) -> None:
        with contextlib.suppress(*DRIVER_ERRORS):
            if not conn.closed:
                conn.execute("ROLLBACK")

    def _commit(
        self, conn: Connection, xid: int, schema_changed: bool, schema_seen: int | None = None
    ) -> int:
        """Take the next revision and commit, in one round trip (see the module docstring).
        With ``schema_seen`` (the revision of the schema the transaction read), the commit
        fails with serialization_failure if a newer schema committed since: checked under the
        clock lock, so no schema change can slip in between."""
        now = int(to_micros(self._clock()))
        nonce = uuid.uuid4()  # identifies this commit if its acknowledgement is lost
        guard = ""
        if schema_seen is not None and not schema_changed:
            guard = (
                "DO $$ BEGIN IF (SELECT coalesce(max(revision), 0) FROM zanzi_schema) <> "
                f"{int(schema_seen)} THEN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = "
                "'the schema changed while this write was validated against it; retry the write'; "
                "END IF; END $$; "
            )
        schema = (
            "UPDATE zanzi_schema SET revision = (SELECT revision FROM zanzi_clock) "
            "WHERE revision IS NULL AND xid = pg_current_xact_id(); "
            if schema_changed
            else ""
        )
        sql = (
            f"UPDATE zanzi_clock SET revision = revision + 1, timestamp = greatest(timestamp, {now}) "
            "RETURNING revision; "
            f"{guard}"
            "INSERT INTO zanzi_transactions (revision, xid, snapshot, timestamp, schema_changed, nonce) "
            "SELECT revision, pg_current_xact_id(), pg_current_snapshot(), timestamp, "
            f"{'true' if schema_changed else 'false'}, '{nonce}'::uuid FROM zanzi_clock; "
            f"{schema}"
            f"SELECT pg_notify('{self._channel}', revision::text) FROM zanzi_clock; "
            "COMMIT"
        )
        try:
            row = conn.execute(sql).fetchone()
            assert row is not None
            return int(row[0])
        except DRIVER_ERRORS as exc:
            if not is_connection_error(exc):
                self._rollback(conn)
                raise translate(exc, writing=True) from exc
            self._primary.mark_failed(exc)
            return self._resolve_commit(xid, nonce, exc)

    def _resolve_commit(self, xid: int, nonce: uuid.UUID, cause: BaseException) -> int:
        """The revision of transaction ``xid`` whose COMMIT was sent but not acknowledged, once
        PostgreSQL can tell whether it committed. The transaction is ours only if its row
        carries our ``nonce``: after a crash, PostgreSQL reuses the xids that never reached
        its WAL, so "xid committed" may be a later transaction's commit (see migration 0002)."""
        deadline = time.monotonic() + COMMIT_RESOLVE_TIMEOUT
        while True:
            try:
                status, revision = self._read(
                    lambda c: (
                        c.execute(
                            # pg_xact_status raises for an xid past the next one: after a crash
                            # that lost ours, that is where the counter may have restarted.
                            "SELECT CASE WHEN %s::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) "
                            "THEN 'aborted' ELSE pg_xact_status(%s::xid8) END, "
                            "(SELECT revision FROM zanzi_transactions WHERE xid = %s::xid8 AND nonce = %s)",
                            (str(xid), str(xid), str(xid), nonce),
                        ).fetchone()
                        or (None, None)
                    )
                )
            except Unavailable:
                status, revision = "unreachable", None
            if status == "committed" and revision is not None:
                return int(revision)
            if status == "aborted" or (status == "committed" and revision is None):
                raise WriteConflict(
                    "the connection to PostgreSQL was lost while committing and the transaction was "
                    "rolled back; retry it"
                ) from cause
            if time.monotonic() > deadline or self._closed:
                raise Unavailable(
                    "the connection to PostgreSQL was lost while committing; whether the transaction "
                    f"committed is unknown (transaction id {xid})"
                ) from cause
            time.sleep(0.1)

    # -- changes ----------------------------------------------------------------------------

    def changes(self, after: Revision, *, limit: int | None = None) -> Iterator[ChangeSet]:
        """See :meth:`Datastore.changes`. The last revision listed is the head at the call;
        pages of revisions are read lazily, each in one statement per table."""
        self.check_revision(after)
        check_limit(limit)
        return self._iter_changes(int_revision(after), self._known_head, limit)

    def _iter_changes(self, after: int, head: int, limit: int | None) -> Iterator[ChangeSet]:
        remaining = limit
        while remaining is None or remaining > 0:
            page = CHANGES_PAGE if remaining is None else min(CHANGES_PAGE, remaining)
            sets = self._read(functools.partial(changes_page, after=after, head=head, page=page), head)
            if not sets:
                return
            yield from sets
            after = int_revision(sets[-1].revision)
            if remaining is not None:
                remaining -= len(sets)

    def wait_for_change(self, after: Revision, timeout: float) -> bool:
        """Wait for a commit after ``after``: woken by commits of this process and by
        PostgreSQL notifications (LISTEN) from every other, and polling the head every
        ``poll_interval`` in case a notification is lost."""
        value = int_revision(after)
        deadline = time.monotonic() + max(timeout, 0.0)
        self._ensure_listener()
        while True:
            if self._closed:
                return False
            if self._known_head > value or self._head_value() > value:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            listening = self._listener is not None and self._listener.connected.is_set()
            pause = self._poll_interval * (4 if listening else 1)
            with self._committed:
                if self._known_head <= value and not self._closed:
                    self._committed.wait(min(remaining, pause))

    def _ensure_listener(self) -> None:
        if self._listener is not None:
            return
        with self._listener_lock:
            if self._listener is None and not self._closed:
                self._listener = Listener(self._primary.conninfo, self._channel, self._on_notify)

    def _on_notify(self, payload: str) -> None:
        if payload.isdigit():
            self._note_head(int(payload))
        else:
            with self._committed:
                self._committed.notify_all()

    # -- garbage collection -----------------------------------------------------------------

    def garbage_collect(self, *, now: datetime | None = None) -> int:
        """Remove, in statements of bounded size (each its own transaction): relationship rows
        deleted at or before the oldest valid revision; live rows created by then that expired
        before ``now - gc_window``; schema versions superseded by then; transaction records
        older than it. Readers at any valid revision never need those rows. Returns the number
        of rows removed."""
        self._check_open()
        cutoff_us = to_micros((as_utc(now) if now is not None else self._clock()) - self.gc_window)
        oldest = max(self._gc_write(lambda c: min_valid_revision(c, cutoff_us)), 1)
        try:
            snapshot = self._snapshot_of(oldest)
        except RevisionGarbageCollected:
            return 0  # collected up to a later revision already (an earlier `now` than before)
        removed = 0
        for statement, params in gc_statements(oldest, snapshot, cutoff_us):
            while True:
                count = self._gc_write(lambda c, s=statement, p=params: c.execute(s, p).rowcount)  # type: ignore[misc]
                removed += max(count, 0)
                if count <= 0 or "LIMIT" not in statement:
                    break
        return removed

    def _gc_write(self, fn: Callable[[Connection], T]) -> T:
        """One autocommit GC statement on the primary (idempotent: retried like a read)."""
        attempt = 1
        while True:
            self._check_open()
            try:
                with self._primary.connection() as conn:
                    return fn(conn)
            except DRIVER_ERRORS as exc:
                self._primary.mark_failed(exc)
                if attempt < READ_ATTEMPTS and is_transient(exc):
                    attempt += 1
                    continue
                raise translate(exc, writing=True) from exc

    # -- lifecycle --------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when the primary answers a trivial query."""
        if self._closed:
            return False
        try:
            self._head_value()
        except ZanziError:
            return False
        return True

    def close(self) -> None:
        """Stop the listener and close every pool. Idempotent."""
        if self._closed:
            return
        with self._committed:
            self._closed = True
            self._committed.notify_all()
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for server in [getattr(self, "_primary", None), *getattr(self, "_replicas", [])]:
            if server is not None:
                server.close()
