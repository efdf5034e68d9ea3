"""History of the PostgreSQL backend: revision snapshots, the changelog and garbage collection.

Pure SQL and snapshot arithmetic over one connection; the datastore
(:mod:`zanzi.store.sql.postgres`) chooses the connection, retries and translates errors.
"""

from __future__ import annotations

from typing import Any

import psycopg

from zanzi.errors import InternalError, RevisionGarbageCollected
from zanzi.model import Relationship
from zanzi.store._support import assemble_changeset, from_micros
from zanzi.store.base import ChangeSet, IntRevision
from zanzi.store.sql.common import decode
from zanzi.store.sql.postgres_rw import COLUMNS

__all__ = [
    "GC_BATCH",
    "changes_page",
    "gc_statements",
    "mark_complete",
    "min_valid_revision",
    "parse_snapshot",
]

#: Rows removed per garbage-collection statement (each its own transaction).
GC_BATCH = 5_000

Connection = psycopg.Connection[Any]


def parse_snapshot(text: str) -> tuple[int, int, list[int]]:
    """``xmin:xmax:xip,...`` (the text form of ``pg_snapshot``) as numbers."""
    try:
        xmin, xmax, xip = text.split(":")
        return int(xmin), int(xmax), [int(x) for x in xip.split(",") if x]
    except ValueError:
        raise InternalError(f"malformed pg_snapshot {text!r} in zanzi_transactions") from None


def mark_complete(snapshot: str, xid: int) -> str:
    """``snapshot`` (taken inside transaction ``xid``) with ``xid`` itself made visible.

    PostgreSQL never lists the caller's own xid among the in-progress ones, but the xid may be
    at or past ``xmax`` (nothing newer had completed), which would make it invisible. Then
    ``xmax`` moves past it, and the ids between the old ``xmax`` and ``xid`` (assigned earlier,
    not completed when the snapshot was taken, hence still running) join the in-progress list.
    """
    xmin, xmax, xip = parse_snapshot(snapshot)
    running = set(xip)
    running.discard(xid)
    if xid >= xmax:
        running.update(range(xmax, xid))
        xmax = xid + 1
    ordered = sorted(running)
    xmin = ordered[0] if ordered else xmax
    return f"{xmin}:{xmax}:{','.join(map(str, ordered))}"


def changes_page(conn: Connection, after: int, head: int, page: int) -> list[ChangeSet]:
    """The change sets of revisions ``after + 1 ..`` (at most ``page``, none past ``head``).
    Raises :class:`RevisionGarbageCollected` if ``after + 1`` is gone."""
    txns = conn.execute(
        "SELECT revision, xid::text, timestamp, schema_changed FROM zanzi_transactions "
        "WHERE revision > %s AND revision <= %s ORDER BY revision LIMIT %s",
        (after, head, page),
    ).fetchall()
    if not txns:
        return []
    if txns[0][0] != after + 1:
        raise RevisionGarbageCollected(f"revision {after + 1} was garbage-collected while listing changes")
    xids = [str(t[1]) for t in txns]
    created: dict[str, list[Relationship]] = {}
    deleted: dict[str, list[Relationship]] = {}
    for column, target in (("created_xid", created), ("deleted_xid", deleted)):
        rows = conn.execute(
            f"SELECT {column}::text, {COLUMNS} FROM zanzi_relationships WHERE {column} = ANY(%s::xid8[])",
            (xids,),
        ).fetchall()
        for row in rows:
            target.setdefault(row[0], []).append(decode(row[1:]))
    return [
        assemble_changeset(
            IntRevision(int(rev)),
            from_micros(int(ts)),
            bool(flag),
            created.get(xid, ()),
            deleted.get(xid, ()),
        )
        for rev, xid, ts, flag in txns
    ]


def min_valid_revision(conn: Connection, cutoff_us: int) -> int:
    """The oldest revision still valid at ``cutoff_us`` (= now - gc_window): the one that was
    the newest at the cutoff, i.e. the predecessor of the first revision committed at or after
    it; the head if nothing was committed since."""
    row = conn.execute(
        "SELECT (SELECT revision FROM zanzi_clock), (SELECT revision FROM zanzi_transactions "
        "WHERE timestamp >= %s ORDER BY timestamp, revision LIMIT 1)",
        (cutoff_us,),
    ).fetchone()
    assert row is not None
    head = int(row[0])
    return head if row[1] is None else min(int(row[1]) - 1, head)


def gc_statements(oldest: int, snapshot: str, cutoff_us: int) -> list[tuple[str, dict[str, Any]]]:
    """The garbage-collection statements for the oldest valid revision ``oldest`` (whose
    snapshot is ``snapshot``). Those with ``LIMIT`` are repeated until they remove nothing.

    A row whose ``deleted_xid`` is visible in ``S_oldest`` was deleted at a revision <=
    ``oldest``, so no valid revision can see it; ``deleted_xid < xmax`` lets the partial index
    on ``deleted_xid`` narrow the scan."""
    params = {"snap": snapshot, "oldest": oldest, "cutoff": cutoff_us, "batch": GC_BATCH}
    return [
        (
            "DELETE FROM zanzi_relationships WHERE ctid = ANY(ARRAY(SELECT ctid FROM zanzi_relationships "
            "WHERE deleted_xid IS NOT NULL AND deleted_xid < pg_snapshot_xmax(%(snap)s::pg_snapshot) "
            "AND pg_visible_in_snapshot(deleted_xid, %(snap)s::pg_snapshot) LIMIT %(batch)s))",
            params,
        ),
        (
            "DELETE FROM zanzi_relationships WHERE ctid = ANY(ARRAY(SELECT ctid FROM zanzi_relationships "
            "WHERE expiration < %(cutoff)s AND deleted_xid IS NULL "
            "AND pg_visible_in_snapshot(created_xid, %(snap)s::pg_snapshot) LIMIT %(batch)s))",
            params,
        ),
        (
            "DELETE FROM zanzi_schema WHERE revision < "
            "(SELECT max(revision) FROM zanzi_schema WHERE revision <= %(oldest)s)",
            params,
        ),
        (
            "DELETE FROM zanzi_transactions WHERE revision IN (SELECT revision FROM zanzi_transactions "
            "WHERE revision < %(oldest)s ORDER BY revision LIMIT %(batch)s)",
            params,
        ),
    ]
