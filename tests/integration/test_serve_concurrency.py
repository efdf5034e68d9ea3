"""Correctness under concurrency and crashes, against real server processes:

- the "new enemy" problem (Zanzibar 2.2): 50 client threads, each with its own connections to a
  server of two worker processes, interleave grants, revokes and checks; a check carrying the
  revoke's token (at_least_as_fresh) must deny every time, whichever worker answers;
- kill -9 in the middle of a stream of write batches: after a restart every acknowledged batch
  is there in full, and no batch is there in part.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from authzed.api.v1 import (
    CheckPermissionResponse,
    Consistency,
    ReadRelationshipsRequest,
    RelationshipFilter,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)

from support.wire import check_request, update
from support.zanzi_server import ZanziServer

SCHEMA = """\
definition user {}

definition group {
    relation member: user
}

definition doc {
    relation viewer: user | group#member
    permission view = viewer
}
"""
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION


def test_new_enemy_under_50_concurrent_clients_and_two_workers(tmp_path: Path) -> None:
    with ZanziServer(tmp_path, workers=2, metrics=True) as server:
        server.client().WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        rounds, threads = 6, 50
        failures: list[str] = []
        checks = [0]
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def worker(n: int) -> None:
            # two connections of its own: writes go through one, checks through the other
            writer = server.client(**{"grpc.use_local_subchannel_pool": 1})
            reader = server.client(**{"grpc.use_local_subchannel_pool": 1})
            barrier.wait(30)
            for r in range(rounds):
                doc, user = f"doc:t{n}", f"user:u{n}"
                # the grant goes through a group, the revoke removes the membership
                grant = writer.WriteRelationships(
                    WriteRelationshipsRequest(
                        updates=[
                            update(f"{doc}#viewer@group:g{n}#member"),
                            update(f"group:g{n}#member@{user}"),
                        ]
                    )
                ).written_at
                seen = reader.CheckPermission(
                    check_request(doc, "view", user, consistency=Consistency(at_least_as_fresh=grant))
                )
                revoke = writer.WriteRelationships(
                    WriteRelationshipsRequest(
                        updates=[update(f"group:g{n}#member@{user}", RelationshipUpdate.OPERATION_DELETE)]
                    )
                ).written_at
                after = reader.CheckPermission(
                    check_request(doc, "view", user, consistency=Consistency(at_least_as_fresh=revoke))
                )
                other = writer.CheckPermission(
                    check_request(doc, "view", user, consistency=Consistency(at_least_as_fresh=revoke))
                )
                with lock:
                    checks[0] += 3
                    if seen.permissionship != HAS:
                        failures.append(f"client {n} round {r}: the grant was not seen")
                    if after.permissionship != NO or other.permissionship != NO:
                        failures.append(f"client {n} round {r}: allowed after the revoke")

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        assert not any(t.is_alive() for t in pool)
        assert not failures, failures[:10]
        assert checks[0] == rounds * threads * 3
        workers = {
            line.split('"pid":')[1].split(",")[0]
            for line in server.logs().splitlines()
            if '"msg":"request"' in line
        }
        assert len(workers) == 2, "both worker processes answered"
        # the supervisor's metrics add up both workers' counters (prometheus multiprocess mode)
        with urllib.request.urlopen(f"http://{server.metrics_addr}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("zanzi_grpc_requests_total{")
            and 'method="PermissionsService/CheckPermission"' in line
            and 'code="OK"' in line
        )
        assert counted == checks[0]


def test_kill_9_loses_no_acknowledged_write_and_leaves_no_partial_batch(tmp_path: Path) -> None:
    batch_size = 50
    acknowledged: list[int] = []
    server = ZanziServer(tmp_path).start()
    try:
        client = server.client()
        client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        stop = threading.Event()
        last_token: list[Any] = []

        def writer() -> None:
            b = 0
            while not stop.is_set():
                updates = [update(f"doc:b{b}_{i}#viewer@user:w") for i in range(batch_size)]
                try:
                    token = client.WriteRelationships(
                        WriteRelationshipsRequest(updates=updates), timeout=5
                    ).written_at
                except grpc.RpcError:
                    return  # the server is gone
                acknowledged.append(b)
                last_token[:] = [token]
                b += 1

        threads = [threading.Thread(target=writer) for _ in range(1)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]  # mid-stream
        server.proc.wait(10)  # type: ignore[union-attr]
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        server.kill()
    assert len(acknowledged) >= 40
    with ZanziServer(tmp_path) as again:
        client = again.client()
        req = ReadRelationshipsRequest(
            consistency=Consistency(at_least_as_fresh=last_token[0]),
            relationship_filter=RelationshipFilter(resource_type="doc"),
        )
        stored = [r.relationship.resource.object_id for r in client.ReadRelationships(req)]
    per_batch: dict[int, int] = {}
    for object_id in stored:
        b = int(object_id[1:].split("_")[0])
        per_batch[b] = per_batch.get(b, 0) + 1
    missing = [b for b in acknowledged if per_batch.get(b) != batch_size]
    assert not missing, f"acknowledged batches not (fully) stored: {missing}"
    partial = {b: n for b, n in per_batch.items() if n != batch_size}
    assert not partial, f"partially stored batches: {partial}"
    assert set(per_batch) - set(acknowledged) <= {max(acknowledged) + 1}  # at most the batch in flight
