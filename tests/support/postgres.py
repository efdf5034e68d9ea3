"""Throwaway PostgreSQL servers for the tests, run from the Debian binaries.

:class:`PostgresServer` runs ``initdb`` and ``postgres`` in a temporary directory on a free
127.0.0.1 port (trust authentication over TCP) and removes everything at :meth:`stop`. When the
tests run as root, the server runs as the ``postgres`` system user (PostgreSQL refuses to run as
root) through ``runuser``. :func:`find_bindir` tells whether the binaries exist at all, so the
tests can skip with a clear message when they do not.

Durability settings are relaxed for speed (``fsync=off``): a clean restart keeps everything (the
fault tests restart the server with ``pg_ctl``), only an operating-system crash would lose data.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "SKIP_REASON",
    "PostgresServer",
    "find_bindir",
    "free_port",
    "new_store_url",
    "running_server",
    "shared_server",
    "skip_reason",
]

SKIP_REASON = (
    "PostgreSQL server binaries not found (looked for initdb in /usr/lib/postgresql/*/bin and on "
    "PATH); install them with `apt-get install postgresql` (.ci/run does)"
)
_NAMES = itertools.count()


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (newest version first)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for directory in reversed(candidates):
        if all(
            os.access(os.path.join(directory, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")
        ):
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb:
        directory = Path(os.path.realpath(initdb)).parent
        if (directory / "pg_ctl").exists() and (directory / "postgres").exists():
            return directory
    return None


def skip_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or ``None`` when they can."""
    if find_bindir() is None:
        return SKIP_REASON
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing (needed to run PostgreSQL as `postgres`)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory.

    ``replica_of`` makes it a streaming-replication standby of another (running) server, set up
    with ``pg_basebackup -R``.
    """

    def __init__(self, *, replica_of: PostgresServer | None = None, settings: dict[str, str] | None = None):
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(SKIP_REASON)
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="zanzi-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = "zanzi"
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
            "max_connections": "200",
            "shared_buffers": "512MB",
            "max_wal_size": "4GB",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "log_min_messages": "warning",
            **(settings or {}),
        }
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.replica_of = replica_of
        if replica_of is None:
            self._run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync"]
            )  # fmt: skip
            with open(self.data / "pg_hba.conf", "a", encoding="utf-8") as hba:
                hba.write("host replication all 127.0.0.1/32 trust\n")
        else:
            self._run(
                [str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(replica_of.port), "-U",
                 replica_of.user, "-D", str(self.data), "-R", "-X", "stream", "--no-sync"]
            )  # fmt: skip
        self.start()

    # -- process control ------------------------------------------------------------------------

    def _command(self, args: Sequence[str]) -> list[str]:
        if self._as_postgres:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self._command(args), capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if check and result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}"
            )
        return result

    def _options(self) -> str:
        return " ".join(f"-c {name}={value}" for name, value in self.settings.items()) + f" -p {self.port}"

    def start(self) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", self._options(),
             "-w", "-t", "60", "start"]
        )  # fmt: skip
        self._wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` by default; ``immediate`` simulates a crash)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
                  check=False)  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- connections ----------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str = "postgres", **query: str) -> str:
        """A Zanzi datastore URL for ``dbname``, with extra query parameters."""
        text = self.dsn(dbname)
        if query:
            text += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return text

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement in autocommit mode; return its rows (if any)."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self, prefix: str = "zanzi") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_NAMES)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def create_schema(self, dbname: str = "postgres", prefix: str = "s") -> str:
        """A new, empty schema in ``dbname``; open a datastore in it with :meth:`schema_url`."""
        name = f"{prefix}_{os.getpid()}_{next(_NAMES)}"
        self.execute(f'CREATE SCHEMA "{name}"', dbname)
        return name

    def schema_url(self, schema: str, dbname: str = "postgres", **query: str) -> str:
        return self.url(dbname, options=f"-csearch_path%3D{schema}", **query)

    # -- replicas -------------------------------------------------------------------------------

    def zanzi_revision(self, schema: str, dbname: str = "postgres") -> int:
        """The newest Zanzi revision in ``schema`` here (on a replica: replayed so far; 0 before
        the tables exist)."""
        if self.execute(f"SELECT to_regclass('{schema}.zanzi_clock')", dbname)[0][0] is None:
            return 0
        rows = self.execute(f"SELECT revision FROM {schema}.zanzi_clock", dbname)
        return int(str(rows[0][0])) if rows else 0

    def wait_replayed(self, schema: str, revision: int, timeout: float = 20.0) -> None:
        """Wait until this replica has replayed Zanzi revision ``revision`` of ``schema``."""
        deadline = time.monotonic() + timeout
        while self.zanzi_revision(schema) < revision:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay revision {revision} in {timeout} s")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        self.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.execute("SELECT pg_wal_replay_resume()")


@contextlib.contextmanager
def running_server(**kwargs: object) -> Iterator[PostgresServer]:
    server = PostgresServer(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.destroy()


_shared: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """One server for the whole test process, started on first use and destroyed at exit (the
    conformance suite and the PostgreSQL tests share it). Raises ``RuntimeError`` when the
    binaries are missing: call :func:`skip_reason` first."""
    global _shared
    if _shared is None:
        import atexit

        _shared = PostgresServer()
        atexit.register(_shared.destroy)
    return _shared


def new_store_url(server: PostgresServer) -> str:
    """A URL for a new, empty datastore: a fresh schema of the server's ``postgres`` database."""
    return server.schema_url(server.create_schema())


# -- workers for the multi-process tests (importable by spawned children) ------------------------


def batch_writer(url: str, name: str, batches: int, size: int) -> list[tuple[str, int]]:
    """Commit ``batches`` transactions, each creating ``size`` relationships of resource
    ``batch:<name>_<i>``; return (resource id, revision) per batch."""
    from zanzi.model import Update
    from zanzi.store.registry import open_datastore

    out: list[tuple[str, int]] = []
    with open_datastore(url, pool_min_size=0) as ds:
        for i in range(batches):
            rid = f"{name}_{i}"
            with ds.transaction() as tx:
                tx.write([Update.create(f"batch:{rid}#member@user:u{j}") for j in range(size)])
            out.append((rid, int(str(tx.revision))))
    return out


def batch_reader(url: str, rounds: int, size: int, seed: int) -> list[tuple[int, list[str]]]:
    """Read ``batch`` relationships at random revisions; check that every batch is whole and
    that contents grow with the revision; return (revision, sorted batch ids) per read."""
    import random

    from zanzi.store.base import IntRevision, RelationshipQuery
    from zanzi.store.registry import open_datastore

    rnd = random.Random(seed)
    seen: list[tuple[int, list[str]]] = []
    with open_datastore(url, pool_min_size=0) as ds:
        start = int(str(ds.head_revision()))
        for _ in range(rounds):
            head = int(str(ds.head_revision()))
            revision = rnd.randint(max(1, start - 5), head)
            counts: dict[str, int] = {}
            for rel in ds.snapshot(IntRevision(revision)).query(RelationshipQuery(resource_type="batch")):
                counts[rel.resource.id] = counts.get(rel.resource.id, 0) + 1
            broken = {rid: n for rid, n in counts.items() if n != size}
            if broken:
                raise AssertionError(f"half a transaction visible at revision {revision}: {broken}")
            seen.append((revision, sorted(counts)))
    return seen


def commit_and_report(url: str, text: str) -> int:
    """Touch one relationship in a new process; return the revision."""
    from zanzi.model import Update
    from zanzi.store.registry import open_datastore

    with open_datastore(url, pool_min_size=0) as ds:
        with ds.transaction() as tx:
            tx.write([Update.touch(text)])
        return int(str(tx.revision))


def migrate_in_process(url: str) -> int:
    from zanzi.store.sql.postgres import migrate_postgres

    return migrate_postgres(url)
