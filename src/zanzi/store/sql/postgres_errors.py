"""Translation of :mod:`psycopg` (and :mod:`psycopg_pool`) exceptions into :mod:`zanzi.errors`
for the PostgreSQL backend.

Every driver call of the backend runs under :func:`driver_errors` (or calls :func:`translate`
itself), so no driver exception escapes it. :func:`is_transient` tells the retry logic which
failures say nothing about the data: a lost or refused connection, a server shutting down or
starting up, a serialization failure or deadlock (the transaction was rolled back), a
statement cancelled by a replica's recovery conflict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

from zanzi.errors import InternalError, RelationshipExists, Unavailable, WriteConflict, ZanziError

__all__ = ["DRIVER_ERRORS", "driver_errors", "is_connection_error", "is_transient", "translate"]

#: Every exception type the backend's driver calls can raise.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
)

# SQLSTATE classes / codes.
_CONNECTION_CLASSES = ("08",)  # connection exception
_UNAVAILABLE_CLASSES = ("53", "57", "58")  # resources, operator intervention, system error
_CONFLICT_CODES = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available
_SHUTDOWN_CODES = ("57P01", "57P02", "57P03")  # admin / crash shutdown, cannot connect now
_READ_ONLY = "25006"  # read-only transaction (a standby, or default_transaction_read_only)
_UNIQUE = "23505"


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", None) or "")


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection (or the server) is gone or not there yet."""
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
        return True
    state = _sqlstate(exc)
    if state.startswith(_CONNECTION_CLASSES) or state in _SHUTDOWN_CODES:
        return True
    # Failures below SQL (socket closed, server vanished) carry no SQLSTATE.
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not state


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same operation (on a fresh connection) may succeed and the
    failed attempt left nothing behind."""
    return is_connection_error(exc) or _sqlstate(exc) in _CONFLICT_CODES


def translate(exc: BaseException, *, writing: bool = False) -> ZanziError:
    """The :mod:`zanzi.errors` exception for a driver one (raise it ``from exc``).

    - lost / refused connection, server shutting down or starting, pool timeout, out of
      resources, read-only server: :class:`Unavailable` (retry later);
    - serialization failure, deadlock, lock timeout: :class:`WriteConflict` when writing
      (the transaction was rolled back; retry it), else :class:`Unavailable`;
    - a unique-key violation on relationships: :class:`RelationshipExists`;
    - anything else (SQL bugs, a damaged schema): :class:`InternalError`, cause chained.
    """
    if isinstance(exc, ZanziError):
        return exc
    state = _sqlstate(exc)
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return Unavailable(
            "no PostgreSQL connection could be had in time (the database is down or overloaded)"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return Unavailable("the PostgreSQL datastore is closed")
    if state in _CONFLICT_CODES:
        if writing:
            return WriteConflict(
                f"the write conflicted with a concurrent transaction and was rolled back ({state}); retry it"
            )
        return Unavailable(f"the read was cancelled by a concurrent operation ({state}); retry it")
    if is_connection_error(exc):
        return Unavailable(f"the PostgreSQL database cannot be reached: {_first_line(exc)}")
    if state == _READ_ONLY:
        return Unavailable("the PostgreSQL server is read-only (a standby?); writes need the primary")
    if state.startswith(_UNAVAILABLE_CLASSES):
        return Unavailable(f"the PostgreSQL database cannot serve the request now: {_first_line(exc)}")
    if state == _UNIQUE and "zanzi_relationships" in str(
        getattr(getattr(exc, "diag", None), "table_name", "")
    ):
        return RelationshipExists("a live relationship with the same key already exists")
    if state == "42P01" and "does not exist" in str(exc):  # undefined table
        return Unavailable(
            "the Zanzi tables are missing from the PostgreSQL database; run `zanzi migrate --datastore URL`"
        )
    return InternalError("internal PostgreSQL datastore error")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def driver_errors(*, writing: bool = False) -> Iterator[None]:
    """Run the block, turning any driver exception into its :mod:`zanzi.errors` one."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc, writing=writing) from exc
