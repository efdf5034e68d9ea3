"""``zanzi serve`` over PostgreSQL (a throwaway server from the Debian binaries; skipped, with the
reason, when they are missing): every SpiceDB conformance scenario through the wire on one
server with two workers (reset between scenarios, as over SQLite), the new-enemy check across
workers, and the refusal to serve a database that is not migrated, or migrated by a newer Zanzi.

Several nodes, Watch across nodes, read replicas and faults are in the other
``test_serve_postgres_*`` modules."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from authzed.api.v1 import (
    CheckPermissionResponse,
    Consistency,
    RelationshipUpdate,
    WriteRelationshipsRequest,
)

from support.paths import SPICEDB_CONFORMANCE
from support.postgres import PostgresServer, migrate_in_process, new_store_url
from support.scenario_wire import run_scenario
from support.wire import GrpcWire, check_request, reset, update
from support.zanzi_server import KEY, ZanziServer, free_port
from zanzi.store.sql.common import load_migrations

pytestmark = pytest.mark.postgres

SCENARIOS = sorted((SPICEDB_CONFORMANCE / "testconfigs").glob("*.yaml"))


@pytest.fixture(scope="module")
def pg_server(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = new_store_url(pg)
    migrate_in_process(url)
    with ZanziServer(tmp_path_factory.mktemp("serve-pg"), datastore=url, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def pg_wire(pg_server: ZanziServer) -> GrpcWire:
    return GrpcWire(pg_server.client())


def test_every_scenario_file_is_here() -> None:
    assert len(SCENARIOS) == 73


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_over_postgres(pg_wire: GrpcWire, path: Path) -> None:
    run_scenario(path, pg_wire)


def test_new_enemy_across_workers_over_postgres(pg_server: ZanziServer, tmp_path: Path) -> None:
    schema = (
        "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
    )
    reset(GrpcWire(pg_server.client()), schema)
    failures: list[str] = []

    def worker(n: int) -> None:
        writer = pg_server.client(**{"grpc.use_local_subchannel_pool": 1})
        reader = pg_server.client(**{"grpc.use_local_subchannel_pool": 1})
        for r in range(5):
            rel = f"doc:pg{n}#viewer@user:u{n}"
            grant = writer.WriteRelationships(WriteRelationshipsRequest(updates=[update(rel)])).written_at
            seen = reader.CheckPermission(
                check_request(
                    f"doc:pg{n}", "view", f"user:u{n}", consistency=Consistency(at_least_as_fresh=grant)
                )
            )
            revoke = writer.WriteRelationships(
                WriteRelationshipsRequest(updates=[update(rel, RelationshipUpdate.OPERATION_DELETE)])
            ).written_at
            after = reader.CheckPermission(
                check_request(
                    f"doc:pg{n}", "view", f"user:u{n}", consistency=Consistency(at_least_as_fresh=revoke)
                )
            )
            if seen.permissionship != CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION:
                failures.append(f"{n}/{r}: grant not seen")
            if after.permissionship != CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION:
                failures.append(f"{n}/{r}: allowed after the revoke")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures[:10]


# -- migrations --------------------------------------------------------------------------------


def _serve(tmp_path: Path, url: str, workers: int) -> subprocess.CompletedProcess[str]:
    """``zanzi serve`` that is expected to refuse to start (it would serve until stopped)."""
    return subprocess.run(
        [sys.executable, "-m", "zanzi", "serve", "--datastore", url, "--grpc-preshared-key", KEY,
         "--grpc-addr", f"127.0.0.1:{free_port()}", "--workers", str(workers)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_refuses_an_unmigrated_database(pg: PostgresServer, tmp_path: Path, workers: int) -> None:
    url = new_store_url(pg)
    result = _serve(tmp_path, url, workers)
    assert result.returncode == 1, result.stderr
    assert "error: " in result.stderr and "has no Zanzi tables" in result.stderr
    assert "run `zanzi migrate --datastore URL`" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_older_or_newer_database(pg: PostgresServer, tmp_path: Path) -> None:
    url = new_store_url(pg)
    migrate_in_process(url)
    schema = url.split("search_path%3D")[1]
    known = len(load_migrations("postgres"))
    pg.execute(f"INSERT INTO {schema}.zanzi_migrations VALUES ({known + 1}, 'future', 'now')")
    newer = _serve(tmp_path, url, 2)
    assert newer.returncode == 1, newer.stderr
    assert f"has schema version {known + 1}" in newer.stderr and "upgrade Zanzi" in newer.stderr
    assert "Traceback" not in newer.stderr

    pg.execute(f"DELETE FROM {schema}.zanzi_migrations WHERE version > {known}")
    pg.execute(f"CREATE TABLE {schema}.saved AS SELECT * FROM {schema}.zanzi_migrations")
    pg.execute(f"DELETE FROM {schema}.zanzi_migrations")  # as if an older Zanzi had made the tables
    older = _serve(tmp_path, url, 1)
    assert older.returncode == 1, older.stderr
    assert f"this Zanzi needs version {known}" in older.stderr
    assert "run `zanzi migrate --datastore URL` to upgrade it" in older.stderr

    pg.execute(f"INSERT INTO {schema}.zanzi_migrations SELECT * FROM {schema}.saved")  # current again
    with ZanziServer(tmp_path, datastore=url, workers=1) as server:
        reset(GrpcWire(server.client()), "definition user {}")
