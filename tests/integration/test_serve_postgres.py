"""``zanzi serve`` with two worker processes over one PostgreSQL datastore (a throwaway server
from the Debian binaries; skipped, with the reason, when they are missing): SpiceDB scenarios
through the wire, and the new-enemy check across workers."""

from __future__ import annotations

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
from support.postgres import migrate_in_process, new_store_url, shared_server, skip_reason
from support.scenario_wire import run_scenario
from support.wire import GrpcWire, check_request, reset, update
from support.zanzi_server import ZanziServer

pytestmark = pytest.mark.postgres

SCENARIOS = ["basicrbac", "caveatedintersectionarrow", "publicwithexclusion", "relexpiration", "document"]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    url = new_store_url(shared_server())
    migrate_in_process(url)
    with ZanziServer(tmp_path_factory.mktemp("serve-pg"), datastore=url, workers=2) as server:
        yield server


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios_over_postgres(pg_server: ZanziServer, name: str) -> None:
    path = SPICEDB_CONFORMANCE / "testconfigs" / f"{name}.yaml"
    run_scenario(path, GrpcWire(pg_server.client()))


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
