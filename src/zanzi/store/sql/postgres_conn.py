"""Connections of the PostgreSQL backend: URL parsing, one pooled :class:`Server` per
PostgreSQL server (the primary and each read replica) with its health, and the LISTEN thread.

Health. Connections are not checked when taken from the pool (that would cost a round trip per
request); a dead one fails on first use instead, and the caller retries where that is safe. A
connection-level failure marks the server *down*. While it is down, a request first makes one
direct connection attempt (a probe, at most one every :data:`PROBE_INTERVAL` for all threads,
bounded by ``connect_timeout``): if the probe fails, the request fails at once with
:class:`~zanzi.errors.Unavailable` instead of queueing for the pool's timeout; if it succeeds,
the server is back and the pool is replaced by a fresh one, so recovery does not wait for the
pool's exponential reconnection backoff and no connection from before the outage is reused.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import psycopg
import psycopg_pool

from zanzi.errors import InvalidArgument, Unavailable
from zanzi.store.sql.postgres_errors import DRIVER_ERRORS, is_connection_error

__all__ = [
    "PROBE_INTERVAL",
    "Listener",
    "PostgresURL",
    "Server",
    "parse_postgres_url",
]

log = logging.getLogger("zanzi.store.postgres")

#: Seconds between two connection probes of a server that is down.
PROBE_INTERVAL = 0.2

Connection = psycopg.Connection[Any]


class PostgresURL:
    """A parsed ``postgresql://`` URL: the libpq connection string (with libpq's own query
    parameters kept) and the Zanzi options found in the query."""

    __slots__ = ("conninfo", "display", "options")

    def __init__(self, conninfo: str, display: str, options: dict[str, str]) -> None:
        self.conninfo = conninfo
        self.display = display  # the URL without its password, for messages
        self.options = options


def parse_postgres_url(url: str, zanzi_options: frozenset[str]) -> PostgresURL:
    """Split ``postgresql://user:pass@host:port/db?...`` (or ``postgres://``) into a libpq
    connection string and the query parameters named in ``zanzi_options``. Raises
    :class:`~zanzi.errors.InvalidArgument` for anything else (without echoing a password)."""
    if not isinstance(url, str):
        raise InvalidArgument("a PostgreSQL datastore URL must be a string")
    scheme, _, _ = url.partition("://")
    if scheme.lower() not in ("postgresql", "postgres"):
        raise InvalidArgument(
            "not a PostgreSQL datastore URL (expected postgresql://user:password@host:port/db)"
        )
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        _ = parts.port  # validates the port
    except ValueError:
        raise InvalidArgument(
            "malformed PostgreSQL datastore URL (check the port and the query string)"
        ) from None
    options = {k: v for k, v in query if k in zanzi_options}
    libpq = [(k, v) for k, v in query if k not in zanzi_options]
    rest = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in libpq)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    host = parts.hostname or "localhost"
    where = f"{host}:{parts.port}" if parts.port else host
    display = f"postgresql://{parts.username + '@' if parts.username else ''}{where}{parts.path}"
    return PostgresURL(conninfo, display, options)


class Server:
    """One PostgreSQL server behind a :class:`psycopg_pool.ConnectionPool` of autocommit
    connections, with the down / probe / fresh-pool logic described in the module docstring.

    ``reached`` is, for a read replica, the newest revision it was seen to have replayed
    (reset to 0 whenever it fails, since a restarted standby may briefly be behind)."""

    def __init__(
        self,
        conninfo: str,
        name: str,
        *,
        min_size: int,
        max_size: int,
        acquire_timeout: float,
        connect_timeout: float,
        start_down: bool = False,
    ) -> None:
        """``start_down`` (read replicas): make no pool until a first probe connects, so a
        replica that is not there costs one refused connection, not a pool timeout."""
        self.conninfo = conninfo
        self.name = name
        self._min_size = min_size
        self._max_size = max_size
        self._acquire_timeout = acquire_timeout
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._down = start_down
        self._last_probe = 0.0
        self._generation = 0
        self._closed = False
        self.reached = 0
        self._pool: psycopg_pool.ConnectionPool[Connection] | None = None if start_down else self._new_pool()

    def _new_pool(self) -> psycopg_pool.ConnectionPool[Connection]:
        self._generation += 1
        pool: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
            self.conninfo,
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self._connect_timeout))},
            timeout=self._acquire_timeout,
            reconnect_timeout=max(self._connect_timeout * 4, 10.0),
            name=f"zanzi-{self.name}-{self._generation}",
            num_workers=2,
            open=False,
        )
        pool.open(wait=False)
        return pool

    def wait_open(self) -> None:
        """Block until the pool has its first connection; :class:`Unavailable` if it cannot."""
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
        except DRIVER_ERRORS as exc:
            self.mark_failed(exc)
            raise Unavailable(f"cannot connect to PostgreSQL at {self.name}: {exc}") from exc

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection for the block. Fails fast with :class:`Unavailable` while the
        server is down and unreachable."""
        pool = self._healthy_pool()
        with pool.connection() as conn:
            yield conn

    def acquire(self) -> tuple[psycopg_pool.ConnectionPool[Connection], Connection]:
        """A pooled connection held until :meth:`release` (for a write transaction)."""
        pool = self._healthy_pool()
        return pool, pool.getconn()

    @staticmethod
    def release(pool: psycopg_pool.ConnectionPool[Connection], conn: Connection) -> None:
        """Give back a connection from :meth:`acquire` (a broken one is discarded)."""
        with contextlib.suppress(Exception):
            pool.putconn(conn)

    def mark_failed(self, exc: BaseException | None = None) -> None:
        """Note a connection-level failure: the server counts as down until a probe succeeds."""
        if exc is not None and not is_connection_error(exc):
            return
        with self._lock:
            if not self._down:
                log.warning("PostgreSQL server %s is unreachable: %s", self.name, exc)
            self._down = True
            self.reached = 0

    @property
    def down(self) -> bool:
        return self._down

    def _healthy_pool(self) -> psycopg_pool.ConnectionPool[Connection]:
        if self._closed:
            raise Unavailable("the PostgreSQL datastore is closed")
        pool = self._pool
        if not self._down and pool is not None:
            return pool
        with self._lock:
            if not self._down and self._pool is not None:
                return self._pool
            now = time.monotonic()
            if now - self._last_probe < PROBE_INTERVAL:
                raise Unavailable(f"the PostgreSQL server {self.name} is unreachable; retry shortly")
            self._last_probe = now
            try:
                probe = psycopg.connect(self.conninfo, connect_timeout=max(1, round(self._connect_timeout)))
            except DRIVER_ERRORS as exc:
                raise Unavailable(f"the PostgreSQL server {self.name} is unreachable: {exc}") from exc
            with contextlib.suppress(*DRIVER_ERRORS):
                probe.close()
            old, pool = self._pool, self._new_pool()
            self._pool = pool
            self._down = False
            if old is not None:
                log.warning("PostgreSQL server %s is reachable again", self.name)
        if old is not None:
            threading.Thread(target=_close_pool, args=(old,), daemon=True).start()
        return pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            _close_pool(pool)


def _close_pool(pool: psycopg_pool.ConnectionPool[Connection]) -> None:
    with contextlib.suppress(Exception):
        pool.close(timeout=1.0)


class Listener:
    """A daemon thread that LISTENs on ``channel`` over its own connection and calls
    ``on_notify(payload)`` for each notification, reconnecting after failures. Notifications
    are only a hint: callers also poll, so a lost one (or a dead listener) costs latency, never
    correctness."""

    def __init__(
        self, conninfo: str, channel: str, on_notify: Callable[[str], None], *, retry: float = 1.0
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notify = on_notify
        self._retry = retry
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zanzi-listen-{channel}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self.connected.set()
                    self._on_notify("")  # (re)connected: whatever was missed meanwhile, poll once
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.25):
                            self._on_notify(notify.payload)
            except DRIVER_ERRORS as exc:
                self.connected.clear()
                log.info("LISTEN connection on %s failed (%s); retrying", self._channel, exc)
                self._stop.wait(self._retry)
        self.connected.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def seconds_option(name: str, value: object, default: float, *, minimum: float = 0.0) -> float:
    """A duration option given as a number of seconds (number or string)."""
    if value is None:
        return default
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value!r}")
    return seconds


def int_option(name: str, value: object, default: int, *, minimum: int = 0) -> int:
    """A whole-number option (number or string)."""
    if value is None:
        return default
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value!r}")
    return number


def bool_option(name: str, value: object, default: bool) -> bool:
    """A yes/no option (bool, or ``true``/``false``/``1``/``0`` from a URL)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"{name} must be true or false, got {value!r}")


def replica_list(value: object) -> list[str]:
    """``read_replicas``: a list of URLs, or one string of comma-separated URLs."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise InvalidArgument("read_replicas must be a list of PostgreSQL URLs")
        return list(value)
    raise InvalidArgument("read_replicas must be a list of PostgreSQL URLs")


def merged_options(
    url_options: Mapping[str, str], options: Mapping[str, Any], known: frozenset[str]
) -> dict[str, Any]:
    """URL query options overridden by keyword options; unknown names are an error."""
    merged: dict[str, Any] = {**url_options, **options}
    unknown = set(merged) - known
    if unknown:
        raise InvalidArgument(
            f"unknown PostgreSQL datastore options: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    return merged
