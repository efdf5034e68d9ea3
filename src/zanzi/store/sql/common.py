"""Helpers the SQL backends share: the versioned migration runner and query-building bits.

Migrations are plain SQL files in ``zanzi/store/sql/migrations/<dialect>/NNNN_name.sql``,
numbered from 1 without gaps. :func:`run_migrations` applies the pending ones, each in its own
transaction together with its row in the ``zanzi_migrations`` table, so running it again (or
from two processes at once) is harmless. A database whose recorded version is newer than the
newest file this code ships is refused with :class:`~zanzi.errors.FailedPrecondition`: old code
must not write to a newer layout.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from sys import intern
from typing import Any, Protocol, TypeVar

from zanzi.errors import FailedPrecondition, InternalError
from zanzi.model import ELLIPSIS, Caveat, ObjectRef, Operation, Relationship, SubjectRef, Update
from zanzi.store._support import decode_context, encode_context, from_micros, to_micros

__all__ = [
    "VERSION_TABLE",
    "Migration",
    "chunked",
    "current_version",
    "load_migrations",
    "pending_migrations",
    "placeholders",
    "prefix_upper_bound",
    "run_migrations",
    "split_statements",
]

#: The table that records which migrations have been applied.
VERSION_TABLE = "zanzi_migrations"

_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
T = TypeVar("T")


class Cursor(Protocol):
    """The part of a DB-API cursor the runner uses."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """The part of a DB-API connection the runner uses."""

    def cursor(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema migration: its version, name and SQL statements."""

    version: int
    name: str
    statements: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.version:04d}_{self.name}"


def split_statements(text: str, is_complete: Callable[[str], bool] | None = None) -> list[str]:
    """Split a SQL script into statements.

    ``is_complete`` decides whether the text gathered so far ends a statement (for SQLite,
    :func:`sqlite3.complete_statement`, which understands triggers and quoted semicolons);
    without it a statement ends at a line ending in ``;``. Comment-only text is dropped.
    """
    statements: list[str] = []
    buffer: list[str] = []
    for line in text.splitlines():
        buffer.append(line)
        chunk = "\n".join(buffer)
        done = is_complete(chunk) if is_complete is not None else line.rstrip().endswith(";")
        if done:
            statement = _strip_comments(chunk)
            if statement:
                statements.append(statement)
            buffer = []
    rest = _strip_comments("\n".join(buffer))
    if rest:
        statements.append(rest)
    return statements


def _strip_comments(chunk: str) -> str:
    lines = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip()


def load_migrations(dialect: str, is_complete: Callable[[str], bool] | None = None) -> list[Migration]:
    """The migrations shipped for ``dialect``, in version order. Raises
    :class:`~zanzi.errors.InternalError` if the files are misnumbered (a packaging bug)."""
    root = importlib.resources.files("zanzi.store.sql").joinpath("migrations", dialect)
    migrations: list[Migration] = []
    for entry in root.iterdir():
        match = _FILE_RE.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        migrations.append(
            Migration(int(match["version"]), match["name"], tuple(split_statements(text, is_complete)))
        )
    migrations.sort(key=lambda m: m.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise InternalError(
                f"{dialect} migrations are misnumbered: expected {expected:04d}, found {migration}"
            )
    return migrations


def pending_migrations(current: int, available: Sequence[Migration], *, database: str) -> list[Migration]:
    """The migrations to apply on a database at version ``current``. Raises
    :class:`~zanzi.errors.FailedPrecondition` if ``current`` is newer than anything known."""
    known = available[-1].version if available else 0
    if current > known:
        raise FailedPrecondition(
            f"the datastore {database} has schema version {current}, but this version of Zanzi "
            f"only knows versions up to {known}; upgrade Zanzi to open it",
            database_version=current,
            known_version=known,
        )
    return [m for m in available if m.version > current]


def current_version(cursor: Cursor) -> int:
    """The newest applied migration version (0 for a fresh database). The version table must
    exist."""
    cursor.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}")
    row = cursor.fetchone()
    return int(row[0])


def run_migrations(
    connection: Connection,
    migrations: Sequence[Migration],
    *,
    database: str,
    begin: str = "BEGIN",
    param: str = "?",
    on_transaction: Callable[[Cursor], None] | None = None,
) -> int:
    """Bring the database up to the newest of ``migrations``; return the final version.

    Each migration runs in its own transaction (``begin`` opens it: SQLite uses
    ``BEGIN IMMEDIATE`` so that concurrent openers queue instead of racing), re-reading the
    version inside the transaction. ``on_transaction`` runs inside the last transaction (even
    when nothing was pending), for idempotent bootstrap writes. Driver errors propagate for the
    caller to translate; the transaction is rolled back first.
    """
    cursor = connection.cursor()
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    while True:
        cursor.execute(begin)
        try:
            pending = pending_migrations(current_version(cursor), migrations, database=database)
            if pending:
                migration = pending[0]
                for statement in migration.statements:
                    cursor.execute(statement)
                cursor.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) "
                    f"VALUES ({param}, {param}, {param})",
                    (migration.version, migration.name, datetime.now(UTC).isoformat()),
                )
            elif on_transaction is not None:
                on_transaction(cursor)
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # the original error matters more
                cursor.execute("ROLLBACK")
            raise
        if not pending:
            return current_version(cursor)


# -- query building ---------------------------------------------------------------------------


def chunked(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` values (one empty slice for no values)."""
    if not values:
        yield values
        return
    for start in range(0, len(values), size):
        yield values[start : start + size]


def placeholders(count: int, param: str = "?") -> str:
    """``?, ?, ?`` for ``count`` parameters."""
    return ", ".join([param] * count)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``, so that
    ``prefix <= x < bound`` is an index-friendly, case-sensitive prefix test. ``None`` when
    there is none (the prefix ends in the largest code point)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1  # skip surrogates
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


# -- rows -------------------------------------------------------------------------------------

#: The relationship columns both SQL backends store, in order (the revision columns follow).
Encoded = tuple[str, str, str, str, str, str, str | None, str | None, int | None]


def encode(rel: Relationship) -> Encoded:
    """The column values of ``rel`` (without the revision columns). Raises
    :class:`~zanzi.errors.InvalidContext` if the caveat context is not JSON-serialisable."""
    r, s = rel.resource, rel.subject
    caveat = rel.caveat
    return (
        r.type,
        r.id,
        rel.relation,
        s.type,
        s.id,
        s.relation or ELLIPSIS,
        caveat.name if caveat is not None else None,
        encode_context(caveat.context) if caveat is not None else None,
        to_micros(rel.expiration) if rel.expiration is not None else None,
    )


def decode(row: Sequence[Any]) -> Relationship:
    """The relationship in the first nine columns of ``row`` (in :func:`encode`'s order)."""
    srel = row[5]
    caveat = Caveat(row[6], decode_context(row[7])) if row[6] is not None else None
    # Interned: every row shares one string per name and per id instead of holding its own
    # copies (a serving index of millions of rows keeps them all; ids repeat across rows).
    # CPython drops an interned string when nothing else refers to it.
    return Relationship(
        ObjectRef(intern(row[0]), intern(row[1])),
        intern(row[2]),
        SubjectRef(intern(row[3]), intern(row[4]), None if srel == ELLIPSIS else intern(srel)),
        caveat,
        from_micros(row[8]) if row[8] is not None else None,
    )


def update_runs(updates: Sequence[Update]) -> list[tuple[Operation, list[tuple[Encoded, Relationship]]]]:
    """Split updates into maximal runs of one operation without a repeated key, so each run
    can be applied as a batch and the order between updates of one key is kept."""
    runs: list[tuple[Operation, list[tuple[Encoded, Relationship]]]] = []
    keys: set[tuple[str, ...]] = set()
    for update in updates:
        rel = update.relationship
        enc = encode(rel)
        key = enc[:6]
        if not runs or runs[-1][0] is not update.operation or key in keys:
            runs.append((update.operation, []))
            keys = set()
        runs[-1][1].append((enc, rel))
        keys.add(key)
    return runs
