"""Translation of :mod:`sqlite3` exceptions into :mod:`zanzi.errors` for the SQLite backend.

Every driver call of the backend runs under :func:`driver_errors` (or calls :func:`translate`
itself), so no :mod:`sqlite3` exception escapes it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from zanzi.errors import InternalError, RelationshipExists, Unavailable, WriteConflict, ZanziError

__all__ = ["DRIVER_ERRORS", "driver_errors", "translate"]

_UNAVAILABLE_CODES = (
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_PERM",
    "SQLITE_AUTH",
    "SQLITE_NOLFS",
    "SQLITE_PROTOCOL",
)


def translate(exc: BaseException, *, writing: bool = False) -> ZanziError:
    """The :mod:`zanzi.errors` exception for a :mod:`sqlite3` one (raise it ``from exc``).

    - busy / locked: :class:`WriteConflict` when writing (retryable), else :class:`Unavailable`;
    - cannot open, I/O error, disk full, read-only file, closed connection: :class:`Unavailable`;
    - a unique-key violation on relationships: :class:`RelationshipExists`;
    - anything else (corruption, SQL bugs): :class:`InternalError`, with the cause chained.
    """
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    message = str(exc)
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in message:
        return Unavailable("the SQLite datastore is closed")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in message:
        if writing:
            return WriteConflict("the SQLite database is locked by another writer; retry the write")
        return Unavailable("the SQLite database is busy; retry")
    if name.startswith(_UNAVAILABLE_CODES) or "unable to open database" in message:
        return Unavailable(f"the SQLite database cannot be used: {message}")
    if isinstance(exc, sqlite3.IntegrityError) and message.startswith(
        "UNIQUE constraint failed: relationships."
    ):
        return RelationshipExists("a live relationship with the same key already exists")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return InternalError("the SQLite database file is corrupt or is not a database")
    return InternalError("internal SQLite datastore error")


DRIVER_ERRORS = (sqlite3.Error, sqlite3.Warning)


@contextlib.contextmanager
def driver_errors(*, writing: bool = False) -> Iterator[None]:
    """Run the block, turning any :mod:`sqlite3` exception into its :mod:`zanzi.errors` one."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc, writing=writing) from exc
