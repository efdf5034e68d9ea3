"""The in-memory datastore: MVCC rows in Python dicts.

Every row remembers the revision that created it and the one that deleted it (``None`` while
live); a snapshot at revision R sees the rows with ``created <= R < deleted``. Rows are indexed
by resource (type, relation, id) and by subject (type, id), so a batched engine query touches
only the buckets it names. It is the reference backend of the conformance suite, the store of
embedded tests, and the model the SQL backends mirror.

Concurrency: one write transaction at a time (a lock held for the whole transaction); readers
never wait for it, because uncommitted rows carry a revision no snapshot can see yet. A short
internal lock guards the index dicts while they are copied or changed. Nothing survives
:meth:`MemoryDatastore.close`.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import secrets
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from zanzi.errors import InvalidArgument, RevisionGarbageCollected, RevisionInFuture, Unavailable
from zanzi.model import Operation, Relationship, Update
from zanzi.store._support import (
    Clock,
    as_utc,
    assemble_changeset,
    check_limit,
    check_not_nested,
    dedupe,
    exists_error,
    int_revision,
    normalize,
    parse_int_revision,
    resolve_clock,
    resolve_gc_window,
    same_attributes,
)
from zanzi.store.base import (
    Capabilities,
    ChangeSet,
    Datastore,
    IntRevision,
    Reader,
    RelationshipKey,
    RelationshipQuery,
    Revision,
    Writer,
    sort_key,
)

__all__ = ["MemoryDatastore", "open_memory"]

#: Updates applied per hold of the index lock, so readers interleave with a bulk write.
_LOCK_CHUNK = 512


class _Row:
    """One version of a relationship. ``deleted`` is set once, by the transaction that
    retires the row; everything else is immutable."""

    __slots__ = ("created", "deleted", "key", "rel")

    def __init__(self, rel: Relationship, key: RelationshipKey, created: int) -> None:
        self.rel = rel
        self.key = key
        self.created = created
        self.deleted: int | None = None

    def visible(self, revision: int) -> bool:
        deleted = self.deleted
        return self.created <= revision and (deleted is None or deleted > revision)


#: An insertion-ordered set of rows (dict keys), so removal is O(1).
_Bucket = dict[_Row, None]
_UndoEntry = tuple[Literal["insert", "retire", "purge", "schema"], Any]


def _row_key(row: _Row) -> RelationshipKey:
    return row.key


def _expired(rel: Relationship, now: datetime) -> bool:
    return rel.expiration is not None and rel.expiration <= now


def _prefix_ok(q: RelationshipQuery, resource_id: str) -> bool:
    return q.resource_id_prefix is None or resource_id.startswith(q.resource_id_prefix)


class MemoryDatastore(Datastore):
    """A revisioned relationship store held in process memory.

    Options: ``gc_window`` (a :class:`~datetime.timedelta`, default 24 hours) and ``clock``
    (a callable returning the current aware datetime; tests use it to control time).
    """

    capabilities = Capabilities(persistent=False, concurrent_writers=False, watch=True, multi_process=False)

    def __init__(self, *, gc_window: object = None, clock: object = None) -> None:
        self.gc_window = resolve_gc_window(gc_window)
        self._clock: Clock = resolve_clock(clock)
        self._id = str(uuid.uuid4())
        self._secret = secrets.token_bytes(32)
        self._closed = False
        self._write_lock = threading.Lock()  # held for a whole write transaction
        self._owner: int | None = None  # the thread holding it
        self._lock = threading.Lock()  # guards the index dicts below, briefly
        self._committed = threading.Condition(threading.Lock())  # notified at each commit
        # Transactions: revision -> (commit timestamp, schema changed); contiguous numbering
        # from _first_rev (older entries are garbage-collected); timestamps never decrease.
        self._first_rev = 1
        self._txn_times: list[datetime] = [self._clock()]
        self._txn_schema: list[bool] = [False]
        self._head = 1
        # Rows and their indexes.
        self._live: dict[RelationshipKey, _Row] = {}
        self._forward: dict[str, dict[str, dict[str, _Bucket]]] = {}
        self._reverse: dict[str, dict[str, _Bucket]] = {}
        self._created_at: dict[int, _Bucket] = {}
        self._deleted_at: dict[int, _Bucket] = {}
        self._row_count = 0
        # Schema history: (created revision, text), ascending.
        self._schemas: list[tuple[int, str]] = []

    # -- identity ---------------------------------------------------------------------------

    @property
    def datastore_id(self) -> str:
        return self._id

    @property
    def token_secret(self) -> bytes:
        return self._secret

    def __repr__(self) -> str:
        return f"MemoryDatastore(head={self._head}, rows={self._row_count})"

    # -- revisions --------------------------------------------------------------------------

    def head_revision(self) -> IntRevision:
        self._check_open()
        return IntRevision(self._head)

    def parse_revision(self, text: str) -> IntRevision:
        return parse_int_revision(text)

    def check_revision(self, revision: Revision) -> None:
        """Valid revisions are the head and every revision that was still the newest at some
        instant inside the GC window (its successor committed at or after
        ``now - gc_window``): exactly the snapshots that :meth:`garbage_collect` preserves.
        So an idle store does not invalidate outstanding tokens at its next write."""
        self._check_open()
        value = int_revision(revision)
        head = self._head
        if value > head:
            raise RevisionInFuture(f"revision {value} is newer than the head revision {head}")
        if value == head:
            return
        with self._lock:
            index = value + 1 - self._first_rev
            successor = self._txn_times[index] if value >= 1 and index >= 0 else None
        if successor is None or successor < self._clock() - self.gc_window:
            raise RevisionGarbageCollected(
                f"revision {value} is older than the garbage-collection window ({self.gc_window})"
            )

    def _min_valid(self, now: datetime) -> int:
        """The oldest revision :meth:`check_revision` accepts at ``now`` (the head if nothing
        was committed inside the window). Caller holds ``_lock``."""
        index = bisect.bisect_left(self._txn_times, now - self.gc_window)
        if index >= len(self._txn_times):
            return self._head
        return self._first_rev + index - 1

    # -- reads ------------------------------------------------------------------------------

    def snapshot(self, revision: Revision, *, now: datetime | None = None) -> Reader:
        """A reader at ``revision``; raises :class:`RevisionInFuture` past the head. It does
        not check the GC window: call :meth:`check_revision` first for client tokens."""
        self._check_open()
        value = int_revision(revision)
        if value > self._head:
            raise RevisionInFuture(f"revision {value} is newer than the head revision {self._head}")
        return _MemoryReader(self, value, as_utc(now) if now is not None else self._clock())

    def _candidates(self, q: RelationshipQuery, after: RelationshipKey | None = None) -> list[_Row]:
        """Rows that may match ``q``, picked through the narrowest index; with a cursor, the
        forward buckets that sort entirely before it are skipped. Caller holds ``_lock``."""
        out: list[_Row] = []
        rids = dedupe(q.resource_ids) if q.resource_ids is not None else None
        sids = dedupe(q.subject_ids) if q.subject_ids is not None else None
        use_forward = rids is not None and (sids is None or len(rids) <= len(sids))
        if use_forward or (sids is None and (q.resource_type is not None or q.subject_type is None)):
            rtypes = [q.resource_type] if q.resource_type is not None else sorted(self._forward)
            for rtype in rtypes:
                by_relation = self._forward.get(rtype)
                if not by_relation or (after is not None and rtype < after[0]):
                    continue
                min_rid = after[1] if after is not None and rtype == after[0] else None
                relations = [q.relation] if q.relation is not None else list(by_relation)
                for relation in relations:
                    by_id = by_relation.get(relation)
                    if not by_id:
                        continue
                    if rids is not None:
                        for rid in rids:
                            bucket = by_id.get(rid)
                            if bucket and (min_rid is None or rid >= min_rid):
                                out.extend(bucket)
                    else:
                        for rid, bucket in by_id.items():
                            if (min_rid is None or rid >= min_rid) and _prefix_ok(q, rid):
                                out.extend(bucket)
        else:
            stypes = [q.subject_type] if q.subject_type is not None else list(self._reverse)
            for stype in stypes:
                by_sid = self._reverse.get(stype)
                if not by_sid:
                    continue
                if sids is not None:
                    for sid in sids:
                        bucket = by_sid.get(sid)
                        if bucket:
                            out.extend(bucket)
                else:
                    for bucket in by_sid.values():
                        out.extend(bucket)
        return out

    def _select(
        self,
        revision: int,
        now: datetime,
        q: RelationshipQuery,
        limit: int | None,
        after: RelationshipKey | None,
        ordered: bool,
    ) -> list[_Row]:
        check_limit(limit)
        if q.is_empty() or limit == 0:
            return []
        with self._lock:
            candidates = self._candidates(q, after)
        match = q.matcher()
        rows = [
            row
            for row in candidates
            if row.visible(revision) and not _expired(row.rel, now) and match(row.rel)
        ]
        if after is not None:
            cursor = tuple(after)
            rows = [row for row in rows if row.key > cursor]
        if ordered and limit is not None and limit < len(rows):
            return heapq.nsmallest(limit, rows, key=_row_key)
        if ordered:
            rows.sort(key=_row_key)
        return rows[:limit] if limit is not None else rows

    def _read_schema(self, revision: int) -> str | None:
        with self._lock:
            index = bisect.bisect_right(self._schemas, revision, key=lambda entry: entry[0])
            return self._schemas[index - 1][1] if index else None

    # -- index maintenance (caller holds _lock) --------------------------------------------

    def _index(self, row: _Row) -> None:
        rel = row.rel
        r, s = rel.resource, rel.subject
        self._forward.setdefault(r.type, {}).setdefault(rel.relation, {}).setdefault(r.id, {})[row] = None
        self._reverse.setdefault(s.type, {}).setdefault(s.id, {})[row] = None
        self._row_count += 1

    def _unindex(self, row: _Row) -> None:
        rel = row.rel
        r, s = rel.resource, rel.subject
        by_relation = self._forward[r.type]
        by_id = by_relation[rel.relation]
        bucket = by_id[r.id]
        del bucket[row]
        if not bucket:
            del by_id[r.id]
            if not by_id:
                del by_relation[rel.relation]
                if not by_relation:
                    del self._forward[r.type]
        by_sid = self._reverse[s.type]
        sbucket = by_sid[s.id]
        del sbucket[row]
        if not sbucket:
            del by_sid[s.id]
            if not by_sid:
                del self._reverse[s.type]
        self._row_count -= 1

    @staticmethod
    def _bucket_remove(buckets: dict[int, _Bucket], revision: int, row: _Row) -> None:
        bucket = buckets.get(revision)
        if bucket is not None:
            bucket.pop(row, None)
            if not bucket:
                del buckets[revision]

    # -- writes -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One write transaction at a time; see :meth:`Datastore.transaction`. Raises
        :class:`~zanzi.errors.FailedPrecondition` when this thread already has one open
        (instead of deadlocking)."""
        self._check_open()
        check_not_nested(self._owner)
        with self._write_lock:
            self._check_open()
            self._owner = threading.get_ident()
            try:
                writer = _MemoryWriter(self, self._head + 1, self._clock())
                try:
                    yield writer
                except BaseException:
                    writer._rollback_to(0)
                    writer._finish()
                    raise
                writer._finish()
                with self._lock:
                    timestamp = max(self._clock(), self._txn_times[-1])
                    self._txn_times.append(timestamp)
                    self._txn_schema.append(writer._schema_changed)
                with self._committed:
                    self._head = writer._revision
                    self._committed.notify_all()
            finally:
                self._owner = None

    # -- changes ----------------------------------------------------------------------------

    def changes(self, after: Revision, *, limit: int | None = None) -> Iterator[ChangeSet]:
        """See :meth:`Datastore.changes`. The revisions listed are fixed when called."""
        self.check_revision(after)
        check_limit(limit)
        start = int_revision(after) + 1
        stop = self._head + 1
        if limit is not None:
            stop = min(stop, start + limit)
        return self._iter_changes(start, stop)

    def _iter_changes(self, start: int, stop: int) -> Iterator[ChangeSet]:
        for revision in range(start, stop):
            with self._lock:
                index = revision - self._first_rev
                if index < 0:
                    raise RevisionGarbageCollected(f"revision {revision} was garbage-collected")
                timestamp = self._txn_times[index]
                schema_changed = self._txn_schema[index]
                created = [row.rel for row in self._created_at.get(revision, ())]
                deleted = [row.rel for row in self._deleted_at.get(revision, ())]
            yield assemble_changeset(IntRevision(revision), timestamp, schema_changed, created, deleted)

    def wait_for_change(self, after: Revision, timeout: float) -> bool:
        self._check_open()
        value = int_revision(after)
        with self._committed:
            return self._committed.wait_for(lambda: self._head > value or self._closed, timeout=timeout) and (
                self._head > value
            )

    # -- garbage collection -----------------------------------------------------------------

    def garbage_collect(self, *, now: datetime | None = None) -> int:
        """Remove rows deleted at or before the oldest valid revision (see
        :meth:`check_revision`), live rows created by then that expired before
        ``now - gc_window``, schema versions superseded by then and older transaction records.
        Works in batches, each under the write lock, so writers wait only briefly."""
        self._check_open()
        check_not_nested(self._owner)
        now = as_utc(now) if now is not None else self._clock()
        removed = 0
        while True:
            with self._write_lock, self._lock:
                batch = self._collect_batch(now, batch_size=10_000)
            removed += batch
            if batch == 0:
                return removed

    def _collect_batch(self, now: datetime, batch_size: int) -> int:
        """One bounded pass of collection. Caller holds the write lock and ``_lock``."""
        min_valid = self._min_valid(now)
        cutoff = now - self.gc_window
        removed = 0
        for revision in sorted(rev for rev in self._deleted_at if rev <= min_valid):
            bucket = self._deleted_at[revision]
            for row in list(bucket)[: batch_size - removed]:
                self._drop_row(row)
                removed += 1
            if removed >= batch_size:
                return removed
        for row in list(self._live.values()):
            if row.created <= min_valid and row.rel.expiration is not None and row.rel.expiration < cutoff:
                del self._live[row.key]
                self._drop_row(row)
                removed += 1
                if removed >= batch_size:
                    return removed
        index = bisect.bisect_right(self._schemas, min_valid, key=lambda entry: entry[0])
        if index > 1:
            removed += index - 1
            del self._schemas[: index - 1]
        if min_valid > self._first_rev:
            drop = min_valid - self._first_rev
            del self._txn_times[:drop]
            del self._txn_schema[:drop]
            self._first_rev = min_valid
            removed += drop
        return removed

    def _drop_row(self, row: _Row) -> None:
        self._unindex(row)
        self._bucket_remove(self._created_at, row.created, row)
        if row.deleted is not None:
            self._bucket_remove(self._deleted_at, row.deleted, row)

    # -- lifecycle --------------------------------------------------------------------------

    def ready(self) -> bool:
        return not self._closed

    def close(self) -> None:
        """Drop every row. Idempotent; later calls raise :class:`~zanzi.errors.Unavailable`."""
        if self._closed:
            return
        with self._committed:
            self._closed = True
            self._committed.notify_all()
        with self._lock:
            self._live.clear()
            self._forward.clear()
            self._reverse.clear()
            self._created_at.clear()
            self._deleted_at.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the datastore is closed")


class _MemoryReader(Reader):
    def __init__(self, ds: MemoryDatastore, revision: int, now: datetime) -> None:
        self._ds = ds
        self._rev = revision
        self._now = now
        self.revision = IntRevision(revision)

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        self._ds._check_open()
        ordered = ordered or limit is not None or after is not None
        rows = self._ds._select(self._rev, self._now, q, limit, after, ordered)
        return iter([row.rel for row in rows])

    def exists(self, q: RelationshipQuery) -> bool:
        self._ds._check_open()
        return bool(self._ds._select(self._rev, self._now, q, 1, None, False))

    def read_schema(self) -> str | None:
        self._ds._check_open()
        return self._ds._read_schema(self._rev)


class _MemoryWriter(Writer):
    """The live state of one transaction at its (not yet visible) revision."""

    def __init__(self, ds: MemoryDatastore, revision: int, now: datetime) -> None:
        self._ds = ds
        self._revision = revision
        self._now = now
        self.revision = IntRevision(revision)
        self._undo: list[_UndoEntry] = []
        self._schema_changed = False
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
        rows = self._ds._select(self._revision, self._now, q, limit, after, ordered)
        return iter([row.rel for row in rows])

    def exists(self, q: RelationshipQuery) -> bool:
        self._check()
        return bool(self._ds._select(self._revision, self._now, q, 1, None, False))

    def read_schema(self) -> str | None:
        self._check()
        return self._ds._read_schema(self._revision)

    # writes --------------------------------------------------------------------------------

    def write(self, updates: Sequence[Update]) -> None:
        """Apply ``updates`` in order, all or nothing: if one fails (a CREATE of a live
        relationship raises :class:`~zanzi.errors.RelationshipExists`), none of this call's
        updates stay applied and the transaction may go on."""
        self._check()
        savepoint = len(self._undo)
        try:
            for start in range(0, len(updates), _LOCK_CHUNK):
                with self._ds._lock:
                    for update in updates[start : start + _LOCK_CHUNK]:
                        self._apply(update)
        except BaseException:
            self._rollback_to(savepoint)
            raise

    def _apply(self, update: Update) -> None:
        rel = normalize(update.relationship)
        key = sort_key(rel)
        live = self._ds._live.get(key)
        operation = update.operation
        if operation is Operation.CREATE:
            if live is not None and not _expired(live.rel, self._now):
                raise exists_error(rel)
            if live is not None:
                self._retire(live)
            self._insert(rel, key)
        elif operation is Operation.TOUCH:
            if live is not None and same_attributes(live.rel, rel):
                return
            if live is not None:
                self._retire(live)
            self._insert(rel, key)
        elif operation is Operation.DELETE:
            if live is not None:
                self._retire(live)
        else:  # pragma: no cover - exhaustive
            raise InvalidArgument(f"unknown operation {operation!r}")

    def delete(self, q: RelationshipQuery, *, limit: int | None = None) -> list[Relationship]:
        """Delete the live, unexpired relationships matching ``q`` (the first ``limit`` in
        sort order when a limit is given) and return them."""
        self._check()
        rows = self._ds._select(self._revision, self._now, q, limit, None, limit is not None)
        savepoint = len(self._undo)
        try:
            with self._ds._lock:
                for row in rows:
                    self._retire(row)
        except BaseException:  # pragma: no cover - nothing above raises
            self._rollback_to(savepoint)
            raise
        return [row.rel for row in rows]

    def write_schema(self, text: str) -> None:
        self._check()
        ds = self._ds
        with ds._lock:
            previous = ds._schemas[-1] if ds._schemas and ds._schemas[-1][0] == self._revision else None
            if previous is not None:
                ds._schemas[-1] = (self._revision, text)
            else:
                ds._schemas.append((self._revision, text))
            self._undo.append(("schema", (previous, self._schema_changed)))
            self._schema_changed = True

    # row operations (caller holds ds._lock) ------------------------------------------------

    def _insert(self, rel: Relationship, key: RelationshipKey) -> None:
        ds = self._ds
        row = _Row(rel, key, self._revision)
        ds._index(row)
        ds._live[key] = row
        ds._created_at.setdefault(self._revision, {})[row] = None
        self._undo.append(("insert", row))

    def _retire(self, row: _Row) -> None:
        ds = self._ds
        del ds._live[row.key]
        if row.created == self._revision:
            # Created by this transaction: never visible to anyone, so it simply goes.
            ds._unindex(row)
            ds._bucket_remove(ds._created_at, self._revision, row)
            self._undo.append(("purge", row))
        else:
            row.deleted = self._revision
            ds._deleted_at.setdefault(self._revision, {})[row] = None
            self._undo.append(("retire", row))

    def _rollback_to(self, savepoint: int) -> None:
        ds = self._ds
        with ds._lock:
            while len(self._undo) > savepoint:
                kind, payload = self._undo.pop()
                if kind == "insert":
                    row = payload
                    del ds._live[row.key]
                    ds._unindex(row)
                    ds._bucket_remove(ds._created_at, self._revision, row)
                elif kind == "retire":
                    row = payload
                    row.deleted = None
                    ds._bucket_remove(ds._deleted_at, self._revision, row)
                    ds._live[row.key] = row
                elif kind == "purge":
                    row = payload
                    ds._index(row)
                    ds._created_at.setdefault(self._revision, {})[row] = None
                    ds._live[row.key] = row
                else:  # schema
                    previous, changed = payload
                    if previous is not None:
                        ds._schemas[-1] = previous
                    else:
                        ds._schemas.pop()
                    self._schema_changed = changed

    # lifecycle -----------------------------------------------------------------------------

    def _finish(self) -> None:
        self._open = False
        self._undo.clear()

    def _check(self) -> None:
        if not self._open:
            raise Unavailable("this transaction has already ended")
        self._ds._check_open()


def open_memory(url: str = "memory://", **options: Any) -> MemoryDatastore:
    """Open a new, empty in-memory datastore. ``url`` must be ``memory://`` (a name after the
    slashes is allowed and ignored: every call returns a separate store). Options:
    ``gc_window``, ``clock``. Raises :class:`~zanzi.errors.InvalidArgument` otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise InvalidArgument(f"not a memory datastore URL: {url!r} (expected memory://)")
    unknown = set(options) - {"gc_window", "clock"}
    if unknown:
        raise InvalidArgument(f"unknown memory datastore options: {', '.join(sorted(unknown))}")
    return MemoryDatastore(gc_window=options.get("gc_window"), clock=options.get("clock"))
