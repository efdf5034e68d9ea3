"""PostgreSQL restarted under load behind two ``zanzi serve`` nodes (one with two workers): no
acknowledged write is lost, no call hangs past its gRPC deadline (calls during the outage fail
fast with UNAVAILABLE, or ABORTED for a commit that was rolled back), no check carrying a token
answers from older data, and both nodes serve again within seconds of PostgreSQL's return,
without a restart. On a PostgreSQL server of its own, since the test stops it; skipped, with the
reason, without PostgreSQL's server binaries."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionResponse,
    Consistency,
    WriteRelationshipsRequest,
)

from support.postgres import PostgresServer, migrate_in_process, new_store_url, skip_reason
from support.wire import GrpcWire, check_request, obj, reset, subj, update
from support.zanzi_server import ZanziServer

pytestmark = pytest.mark.postgres

SCHEMA = (
    "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
)
DEADLINE = 5.0  # seconds, on every call
OUTAGE = 1.5  # seconds between PostgreSQL's stop and the start of its restart
RECOVERY_BOUND = 15.0  # seconds from PostgreSQL's return until both nodes serve again
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
FAST_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PostgresServer]:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        yield server
    finally:
        server.destroy()


class Load:
    """Writer and checker threads over both nodes; every call and its outcome is recorded."""

    def __init__(self, nodes: list[ZanziServer], writers: int = 4, checkers: int = 4) -> None:
        self.nodes = nodes
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: list[tuple[str, Any]] = []  # (relationship, written_at)
        self.latest: dict[int, tuple[str, str, Any]] = {}  # writer -> (resource, subject, token)
        self.calls: list[tuple[str, float, float, grpc.StatusCode]] = []  # kind, start, duration, code
        self.stale: list[str] = []
        self.threads = [threading.Thread(target=self._write, args=(n,)) for n in range(writers)]
        self.threads += [threading.Thread(target=self._check, args=(n,)) for n in range(checkers)]

    def _clients(self) -> list[Any]:
        return [node.client(**{"grpc.use_local_subchannel_pool": 1}) for node in self.nodes]

    def _record(self, kind: str, started: float, code: grpc.StatusCode) -> None:
        with self.lock:
            self.calls.append((kind, started, time.monotonic() - started, code))

    def _write(self, n: int) -> None:
        clients, i = self._clients(), 0
        while not self.stop.is_set():
            resource, subject = f"doc:f{n}_{i}", f"user:u{n}"
            text = f"{resource}#viewer@{subject}"
            client = clients[i % len(clients)]
            i += 1
            started = time.monotonic()
            try:
                token = client.WriteRelationships(
                    WriteRelationshipsRequest(updates=[update(text)]), timeout=DEADLINE
                ).written_at
            except grpc.RpcError as exc:
                self._record("write", started, exc.code())
                time.sleep(0.02)
                continue
            self._record("write", started, grpc.StatusCode.OK)
            with self.lock:
                self.acknowledged.append((text, token))
                self.latest[n] = (resource, subject, token)

    def _check(self, n: int) -> None:
        clients, rnd = self._clients(), random.Random(n)
        while not self.stop.is_set():
            with self.lock:
                targets = list(self.latest.values())
            if not targets:
                time.sleep(0.01)
                continue
            resource, subject, token = rnd.choice(targets)
            started = time.monotonic()
            try:
                answer = rnd.choice(clients).CheckPermission(
                    check_request(
                        resource, "view", subject, consistency=Consistency(at_least_as_fresh=token)
                    ),
                    timeout=DEADLINE,
                )
            except grpc.RpcError as exc:
                self._record("check", started, exc.code())
                time.sleep(0.02)
                continue
            self._record("check", started, grpc.StatusCode.OK)
            if answer.permissionship != HAS:
                with self.lock:
                    self.stale.append(f"{resource}@{subject}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def _serves_again(node: ZanziServer, since: float) -> float:
    """Seconds from ``since`` until ``node`` answers a write and a fully consistent check."""
    client = node.client(**{"grpc.use_local_subchannel_pool": 1})
    deadline = since + RECOVERY_BOUND + 5
    while True:
        try:
            token = client.WriteRelationships(
                WriteRelationshipsRequest(updates=[update("doc:probe#viewer@user:probe")]), timeout=2
            ).written_at
            answer = client.CheckPermission(
                check_request(
                    "doc:probe", "view", "user:probe", consistency=Consistency(at_least_as_fresh=token)
                ),
                timeout=2,
            )
            assert answer.permissionship == HAS
            return time.monotonic() - since
        except grpc.RpcError as exc:
            assert exc.code() in FAST_FAILURES | {grpc.StatusCode.DEADLINE_EXCEEDED}, exc
            assert time.monotonic() < deadline, f"{node.grpc_addr} does not serve again: {exc.details()}"
            time.sleep(0.05)


def _all_visible(client: Any, acknowledged: list[tuple[str, Any]]) -> list[str]:
    """The acknowledged relationships a fully consistent bulk check does not find."""
    missing: list[str] = []
    for start in range(0, len(acknowledged), 1000):
        batch = acknowledged[start : start + 1000]
        request = CheckBulkPermissionsRequest(consistency=Consistency(fully_consistent=True))
        for text, _ in batch:
            resource, _, subject = text.partition("#viewer@")
            request.items.append(
                CheckBulkPermissionsRequestItem(
                    resource=obj(resource), permission="view", subject=subj(subject)
                )
            )
        pairs = client.CheckBulkPermissions(request, timeout=30).pairs
        missing += [
            text for (text, _), pair in zip(batch, pairs, strict=True) if pair.item.permissionship != HAS
        ]
    return missing


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_under_load(own_pg: PostgresServer, tmp_path: Path, mode: str) -> None:
    """``fast``: PostgreSQL ends every session and stops cleanly; ``immediate``: it stops as if
    it crashed (no checkpoint; the restart replays the WAL), which can cut a commit whose
    acknowledgement is then lost."""
    url = new_store_url(own_pg)
    migrate_in_process(url)
    nodes = [
        ZanziServer(tmp_path, datastore=url, workers=2),
        ZanziServer(tmp_path, datastore=url, workers=1),
    ]
    try:
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_serving(60)
        reset(GrpcWire(nodes[0].client()), SCHEMA)
        with Load(nodes) as load:
            time.sleep(1.0)
            before = len(load.acknowledged)
            down = time.monotonic()
            own_pg.stop(mode)
            time.sleep(OUTAGE)
            own_pg.start()  # returns once PostgreSQL accepts connections
            up = time.monotonic()
            recovered = [_serves_again(node, up) for node in nodes]
            count = len(load.acknowledged)
            wait_until = time.monotonic() + 10
            while len(load.acknowledged) < count + 50 and time.monotonic() < wait_until:
                time.sleep(0.05)
        after = len(load.acknowledged) - count

        outcomes = Counter((kind, code.name) for kind, _, _, code in load.calls)
        failed = [
            (kind, start, took, code) for kind, start, took, code in load.calls if code != grpc.StatusCode.OK
        ]
        during = [call for call in load.calls if down <= call[1] <= up]
        print(
            f"\nrestart ({mode}) under load: {before} writes acknowledged before, outage {up - down:.1f} s, "
            f"served again {max(recovered):.2f} s after PostgreSQL returned "
            f"(nodes: {', '.join(f'{r:.2f} s' for r in recovered)}), {after} writes acknowledged after; "
            f"calls {dict(outcomes)}; slowest failure {max((f[2] for f in failed), default=0):.2f} s"
        )
        assert before > 0 and after >= 50
        assert during, "no call was made while PostgreSQL was down"
        assert {code for *_, code in failed} <= FAST_FAILURES, outcomes
        assert max((took for _, _, took, _ in load.calls), default=0) < DEADLINE
        assert load.stale == [], load.stale[:10]
        assert max(recovered) < RECOVERY_BOUND

        for node in nodes:  # every acknowledged write, on both nodes
            assert _all_visible(node.client(), load.acknowledged) == []
        tokens = [token.token for _, token in load.acknowledged]
        assert len(set(tokens)) == len(tokens)
    finally:
        for node in nodes:
            node.stop()
