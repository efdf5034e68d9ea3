"""``zanzi serve --datastore-read-replica``: a streaming-replication pair (primary + standby made
with ``pg_basebackup -R``) behind two nodes: W (writes, no replica) and R (two workers, with the
replica). Node R keeps its serving index up to date from the store's changelog; those reads go
to the replica once it has replayed the revision they need, as seen from the replica itself
(``pg_stat_activity`` shows R's relationship queries there). While replay is paused, a write on W
and then an ``at_least_as_fresh`` check on R still see the write (the primary answers); after
replay resumes the answers stay right and the replica serves again. Skipped, with the reason,
without PostgreSQL's server binaries."""

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
) -> Iterator[tuple[ZanziServer, ZanziServer, str]]:
    """Nodes W and R on the pair, and the Postgres schema of their datastore."""
    primary, replica = pair
    schema = primary.create_schema()
    url = primary.schema_url(schema)
    migrate_in_process(url)
    directory = tmp_path_factory.mktemp("replica")
    writer = ZanziServer(directory, datastore=url, workers=1)
    reader = ZanziServer(
        directory,
        datastore=url,
        workers=2,
        extra=("--datastore-read-replica", replica.schema_url(schema, application_name=APP)),
    )
    with writer, reader:
        yield writer, reader, schema


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


def _written(client: Any, text: str, op: int = RelationshipUpdate.OPERATION_TOUCH) -> Any:
    return client.WriteRelationships(WriteRelationshipsRequest(updates=[update(text, op)])).written_at


def _served_by_replica(w: Any, r: Any, replica: PostgresServer, schema: str, prefix: str) -> int:
    """Writes on node W, each replayed by the replica before node R checks it with the write's
    token, until the replica shows one of R's relationship reads; how many rounds it took (R
    catches up from the replica only when it has learned the replica's progress, which it
    checks at most every 50 ms)."""
    since = _replica_now(replica)
    for i in range(1, 21):
        token = _written(w, f"doc:{prefix}{i}#viewer@user:carol")
        replica.wait_replayed(schema, token_revision(token.token))
        time.sleep(0.06)
        assert _check(r, f"doc:{prefix}{i}", "user:carol", _fresh(token)) == HAS
        if _replica_reads_since(replica, since):
            return i
    raise AssertionError("no read of node R reached the replica in 20 rounds, each replayed first")


def test_node_r_logs_its_replica(served: tuple[ZanziServer, ZanziServer, str], pair: Any) -> None:
    _, node_r, _ = served
    deadline = time.monotonic() + 20
    while True:  # the node is SERVING once one worker is; wait for the other's line too
        lines = [json.loads(line) for line in node_r.logs().splitlines() if line.startswith("{")]
        serving = [line for line in lines if line.get("msg") == "serving"]
        if len(serving) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(serving) == 2 and all(len(line["read_replicas"]) == 1 for line in serving)  # both workers
    assert f":{pair[1].port}/" in serving[0]["read_replicas"][0]


def test_reads_follow_the_replica_and_fall_back_to_the_primary_while_it_lags(
    served: tuple[ZanziServer, ZanziServer, str], pair: tuple[PostgresServer, PostgresServer]
) -> None:
    node_w, node_r, schema = served
    _, replica = pair
    w, r = node_w.client(), node_r.client()
    reset(GrpcWire(w), SCHEMA)
    first = _written(w, "doc:one#viewer@user:alice")
    replica.wait_replayed(schema, token_revision(first.token))
    assert _check(r, "doc:one", "user:alice", _fresh(first)) == HAS

    # Replayed: node R reads from the replica, and rightly.
    took = _served_by_replica(w, r, replica, schema, "caught_up_")
    print(f"\nreplica: node R read from it after {took} round(s)")

    replica.pause_replay()
    try:
        paused_at = replica.zanzi_revision(schema)
        grant = _written(w, "doc:paused#viewer@user:bob")
        assert replica.zanzi_revision(schema) == paused_at < token_revision(grant.token)
        time.sleep(0.06)  # past R's replica progress-check interval: it sees the lag
        # The replica has not replayed the grant: the primary answers node R, and the write is seen.
        assert _check(r, "doc:paused", "user:bob", _fresh(grant)) == HAS
        found = r.LookupResources(
            LookupResourcesRequest(
                consistency=_fresh(grant),
                resource_object_type="doc",
                permission="view",
                subject=subj("user:bob"),
            )
        )
        assert [x.resource_object_id for x in found] == ["paused"]
        revoke = _written(w, "doc:paused#viewer@user:bob", RelationshipUpdate.OPERATION_DELETE)
        assert _check(r, "doc:paused", "user:bob", _fresh(revoke)) == NO
        assert _check(r, "doc:paused", "user:bob", Consistency(at_exact_snapshot=grant)) == HAS
        # Older revisions, which the paused replica has, are still right.
        assert _check(r, "doc:one", "user:alice", Consistency(at_exact_snapshot=first)) == HAS
        assert _check(r, "doc:paused", "user:bob", Consistency(at_exact_snapshot=first)) == NO
        assert replica.zanzi_revision(schema) == paused_at
    finally:
        replica.resume_replay()

    replica.wait_replayed(schema, token_revision(revoke.token))
    assert _check(r, "doc:paused", "user:bob", _fresh(revoke)) == NO
    assert _check(r, "doc:paused", "user:bob", Consistency(at_exact_snapshot=grant)) == HAS
    assert _check(r, "doc:one", "user:alice", Consistency(fully_consistent=True)) == HAS
    _served_by_replica(w, r, replica, schema, "resumed_")
