"""Two ``zanzi serve`` nodes on one PostgreSQL database, each with two worker processes, as
behind a load balancer: a token from one node is honoured by the other (no new enemy, under
concurrent load, counted), and a Watch on one node streams the changes written through the
other, in order, without gaps or duplicates, resumable on either node. Skipped, with the reason,
without PostgreSQL's server binaries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from authzed.api.v1 import (
    CheckPermissionResponse,
    Consistency,
    RelationshipUpdate,
    WatchRequest,
    WriteRelationshipsRequest,
    ZedToken,
)

from support.postgres import PostgresServer, migrate_in_process, new_store_url
from support.wire import GrpcWire, check_request, reset, token_revision, update
from support.zanzi_server import ZanziServer, running_nodes

pytestmark = pytest.mark.postgres

SCHEMA = """\
definition user {}

definition group {
    relation member: user | group#member
}

definition doc {
    relation viewer: user | group#member
    permission view = viewer
}
"""
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
DELETE = RelationshipUpdate.OPERATION_DELETE


@pytest.fixture(scope="module")
def nodes(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ZanziServer]]:
    url = new_store_url(pg)
    migrate_in_process(url)
    with running_nodes(tmp_path_factory.mktemp("nodes"), 2, datastore=url, workers=2) as servers:
        reset(GrpcWire(servers[0].client()), SCHEMA)
        yield servers


def _own_client(server: ZanziServer) -> Any:
    """A client on its own connection (so the kernel may hand it to any worker of the node)."""
    return server.client(**{"grpc.use_local_subchannel_pool": 1})


def _write(client: Any, *updates: Any) -> Any:
    return client.WriteRelationships(WriteRelationshipsRequest(updates=list(updates))).written_at


def _check(client: Any, resource: str, subject: str, token: Any) -> int:
    request = check_request(resource, "view", subject, consistency=Consistency(at_least_as_fresh=token))
    return int(client.CheckPermission(request, timeout=30).permissionship)


def test_a_token_from_one_node_is_honoured_by_the_other(nodes: list[ZanziServer]) -> None:
    a, b = (server.client() for server in nodes)
    grant = _write(a, update("doc:shared#viewer@user:alice"))
    assert _check(b, "doc:shared", "user:alice", grant) == HAS
    revoke = _write(b, update("doc:shared#viewer@user:alice", DELETE))
    assert _check(a, "doc:shared", "user:alice", revoke) == NO
    # a snapshot pinned at the grant is the same on both nodes
    exact = Consistency(at_exact_snapshot=grant)
    for client in (a, b):
        answer = client.CheckPermission(check_request("doc:shared", "view", "user:alice", consistency=exact))
        assert answer.permissionship == HAS


def test_no_stale_answer_across_nodes_under_concurrent_load(nodes: list[ZanziServer]) -> None:
    """Each client thread grants on one node and checks on the other with the grant's token,
    then revokes there and checks back on the first with the revoke's token; the nodes swap
    roles every round. Grants go through a group, so a node answering from stale data (a cache,
    a lagging read) would say the opposite. Every answer is counted."""
    threads_count, rounds = 24, 16
    stale: list[str] = []
    checks = [0] * threads_count
    errors: list[BaseException] = []

    def client_thread(n: int) -> None:
        try:
            clients = [_own_client(server) for server in nodes]
            _write(clients[0], update(f"doc:load{n}#viewer@group:g{n}#member"))
            for r in range(rounds):
                here, there = clients[(n + r) % 2], clients[(n + r + 1) % 2]
                member = f"group:g{n}#member@user:u{n}"
                grant = _write(here, update(member))
                if _check(there, f"doc:load{n}", f"user:u{n}", grant) != HAS:
                    stale.append(f"thread {n} round {r}: the grant was not seen on the other node")
                revoke = _write(there, update(member, DELETE))
                if _check(here, f"doc:load{n}", f"user:u{n}", revoke) != NO:
                    stale.append(f"thread {n} round {r}: still allowed after the revoke on the other node")
                checks[n] += 2
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    print(
        f"\ntwo nodes: {sum(checks)} checks and as many writes from {threads_count} threads in "
        f"{elapsed:.1f} s, {len(stale)} stale answers"
    )
    assert not errors, errors[:3]
    assert sum(checks) == threads_count * rounds * 2
    assert len(stale) == 0, stale[:10]


# -- Watch across nodes ---------------------------------------------------------------------


def _updates(response: Any) -> list[tuple[int, str]]:
    out = []
    for u in response.updates:
        r, s = u.relationship, u.relationship.subject.object
        resource = f"{r.resource.object_type}:{r.resource.object_id}"
        out.append((u.operation, f"{resource}#{r.relation}@{s.object_type}:{s.object_id}"))
    return out


def _collect(stream: Any, count: int, into: list[Any], done: threading.Event) -> None:
    try:
        for response in stream:
            into.append(response)
            if len(into) >= count:
                break
    except Exception:  # noqa: BLE001 - the stream is cancelled at the end; the count tells
        pass
    done.set()


def test_watch_on_one_node_streams_the_writes_of_the_other(nodes: list[ZanziServer]) -> None:
    a, b = (server.client() for server in nodes)
    start = _write(a, update("doc:watch0#viewer@user:start"))
    writers, per_writer = 6, 20
    total = writers * per_writer + 1

    received: list[Any] = []
    done = threading.Event()
    stream = b.Watch(WatchRequest(optional_start_cursor=start), timeout=60)
    threading.Thread(target=_collect, args=(stream, total, received, done), daemon=True).start()

    written: dict[str, list[tuple[int, str]]] = {}
    order: dict[int, list[str]] = {n: [] for n in range(writers)}
    lock = threading.Lock()

    def writer(n: int) -> None:
        client = _own_client(nodes[0])
        for i in range(per_writer):
            text = f"doc:watch_{n}_{i}#viewer@user:w{n}"
            token = _write(client, update(text)).token
            with lock:
                written[token] = [(RelationshipUpdate.OPERATION_TOUCH, text)]
                order[n].append(token)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then one revoke through node A, after every concurrent write
    last = _write(a, update("doc:watch0#viewer@user:start", DELETE)).token
    written[last] = [(DELETE, "doc:watch0#viewer@user:start")]

    assert done.wait(30), f"the watch on node B received {len(received)} of {total} changes"
    stream.cancel()
    tokens = [r.changes_through.token for r in received]
    revisions = [token_revision(t) for t in tokens]
    assert len(set(tokens)) == len(tokens), "duplicate changes"
    assert revisions == sorted(revisions), "changes out of revision order"
    assert set(tokens) == set(written), "changes missing or foreign"  # no gap: every write, once
    assert revisions == list(range(token_revision(start.token) + 1, revisions[-1] + 1)), "a gap"
    assert tokens[-1] == last
    for response in received:
        assert _updates(response) == written[response.changes_through.token]
    for n, mine in order.items():  # each writer's changes in its own order
        assert [t for t in tokens if t in set(mine)] == mine, f"writer {n} reordered"

    # Resume from a token streamed by node B, on node A: exactly the rest, in the same order.
    middle = total // 2
    resumed: list[Any] = []
    done_again = threading.Event()
    cursor = ZedToken(token=tokens[middle])
    again = a.Watch(WatchRequest(optional_start_cursor=cursor), timeout=60)
    threading.Thread(
        target=_collect, args=(again, total - middle - 1, resumed, done_again), daemon=True
    ).start()
    assert done_again.wait(30), f"the resumed watch on node A received {len(resumed)} changes"
    again.cancel()
    assert [r.changes_through.token for r in resumed] == tokens[middle + 1 :]
    assert [_updates(r) for r in resumed] == [_updates(r) for r in received[middle + 1 :]]
