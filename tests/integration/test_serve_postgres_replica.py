"""``zanzi serve --datastore-read-replica``: a streaming-replication pair (primary + standby made
with ``pg_basebackup -R``) behind a server with two workers. Reads at a revision the replica has
replayed are served by the replica (seen from the replica itself: ``pg_stat_activity`` shows the
server's relationship queries there); while replay is paused, a write and then an
``at_least_as_fresh`` check still see the write (the primary answers), and after replay resumes
the answers stay right and the replica serves again. Skipped, with the reason, without
PostgreSQL's server binaries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from authzed.api.v1 import (
    CheckPermissionResponse,
    Consistency,
    LookupResourcesRequest,
    RelationshipUpdate,
    WriteRelationshipsRequest,
)

from support.postgres import PostgresServer, migrate_in_process, skip_reason
from support.wire import GrpcWire, check_request, reset, subj, token_revision, update
from support.zanzi_server import ZanziServer

pytestmark = pytest.mark.postgres

SCHEMA = (
    "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
)
APP = "zanzi_replica_reads"  # the application_name of the server's replica connections
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """A small primary of its own (pg_basebackup copies everything) and its streaming replica."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    primary = PostgresServer()
    try:
        replica = PostgresServer(replica_of=primary)
        try:
            yield primary, replica
        finally:
            replica.destroy()
    finally:
        primary.destroy()


@pytest.fixture(scope="module")
def served(
    pair: tuple[PostgresServer, PostgresServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ZanziServer, str]]:
    primary, replica = pair
    schema = primary.create_schema()
    migrate_in_process(primary.schema_url(schema))
    replica_url = replica.schema_url(schema, application_name=APP)
    server = ZanziServer(
        tmp_path_factory.mktemp("replica"),
        datastore=primary.schema_url(schema),
        workers=2,
        extra=("--datastore-read-replica", replica_url),
    )
    with server:
        yield server, schema


def _check(client: Any, resource: str, subject: str, consistency: Consistency) -> int:
    return int(
        client.CheckPermission(
            check_request(resource, "view", subject, consistency=consistency)
        ).permissionship
    )


def _fresh(token: Any) -> Consistency:
    return Consistency(at_least_as_fresh=token)


def _replica_reads_since(replica: PostgresServer, since: str) -> int:
    """Connections of the server to the replica whose latest statement, started after
    ``since`` (the replica's clock), read relationships."""
    rows = replica.execute(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE application_name = '{APP}' AND query LIKE '%zanzi_relationships%' "
        f"AND query_start > '{since}'::timestamptz"
    )
    return int(str(rows[0][0]))


def _replica_now(replica: PostgresServer) -> str:
    return str(replica.execute("SELECT clock_timestamp()::text")[0][0])


def _served_by_replica(client: Any, replica: PostgresServer, token: Any, prefix: str) -> int:
    """Checks of new resources (no cache has them) at ``token`` until the replica shows one of
    the server's relationship reads; how many it took (at most 50)."""
    since = _replica_now(replica)
    for i in range(1, 51):
        assert _check(client, f"doc:{prefix}{i}", "user:alice", _fresh(token)) == NO
        if _replica_reads_since(replica, since):
            return i
        time.sleep(0.02)
    raise AssertionError("no read reached the replica in 50 checks at a revision it had replayed")


def test_the_server_logs_its_replicas(served: tuple[ZanziServer, str], pair: Any) -> None:
    server, _ = served
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    serving = [line for line in lines if line.get("msg") == "serving"]
    assert serving and all(len(line["read_replicas"]) == 1 for line in serving)
    assert f":{pair[1].port}/" in serving[0]["read_replicas"][0]


def test_reads_follow_the_replica_and_fall_back_to_the_primary_while_it_lags(
    served: tuple[ZanziServer, str], pair: tuple[PostgresServer, PostgresServer]
) -> None:
    server, schema = served
    _, replica = pair
    client = server.client()
    reset(GrpcWire(client), SCHEMA)
    first = client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update("doc:one#viewer@user:alice")])
    ).written_at
    replica.wait_replayed(schema, token_revision(first.token))

    # Replayed: the replica answers, and rightly.
    assert _check(client, "doc:one", "user:alice", _fresh(first)) == HAS
    took = _served_by_replica(client, replica, first, "caught_up_")
    print(f"\nreplica: served a read after {took} check(s)")

    replica.pause_replay()
    try:
        paused_at = replica.zanzi_revision(schema)
        grant = client.WriteRelationships(
            WriteRelationshipsRequest(updates=[update("doc:paused#viewer@user:bob")])
        ).written_at
        assert replica.zanzi_revision(schema) == paused_at < token_revision(grant.token)
        # The replica has not replayed the grant: the primary answers, and the write is seen.
        assert _check(client, "doc:paused", "user:bob", _fresh(grant)) == HAS
        found = client.LookupResources(
            LookupResourcesRequest(
                consistency=_fresh(grant),
                resource_object_type="doc",
                permission="view",
                subject=subj("user:bob"),
            )
        )
        assert [r.resource_object_id for r in found] == ["paused"]
        revoke = client.WriteRelationships(
            WriteRelationshipsRequest(
                updates=[update("doc:paused#viewer@user:bob", RelationshipUpdate.OPERATION_DELETE)]
            )
        ).written_at
        assert _check(client, "doc:paused", "user:bob", _fresh(revoke)) == NO
        assert _check(client, "doc:paused", "user:bob", Consistency(at_exact_snapshot=grant)) == HAS
        # An old revision is still fine on the paused replica.
        assert _check(client, "doc:one", "user:alice", Consistency(at_exact_snapshot=first)) == HAS
        assert _check(client, "doc:paused", "user:bob", Consistency(at_exact_snapshot=first)) == NO
        assert replica.zanzi_revision(schema) == paused_at
    finally:
        replica.resume_replay()

    replica.wait_replayed(schema, token_revision(revoke.token))
    assert _check(client, "doc:paused", "user:bob", _fresh(revoke)) == NO
    assert _check(client, "doc:paused", "user:bob", Consistency(at_exact_snapshot=grant)) == HAS
    assert _check(client, "doc:one", "user:alice", Consistency(fully_consistent=True)) == HAS
    _served_by_replica(client, replica, revoke, "resumed_")
