"""Load on a real ``zanzi serve``: one worker process with a thread pool against several worker
processes sharing the port (SO_REUSEPORT), over the same SQLite file.

Starts the server, loads a small "docs" model (groups nested three deep, folders, documents),
then runs client processes whose threads each hold their own gRPC connection and send
authzed.api.v1 messages (pre-serialized where possible, so the clients take little CPU) for a
fixed time: a mix of CheckPermission (90%) and WriteRelationships (10%, each followed by a
check at_least_as_fresh its token). Prints requests per second, latency percentiles and the
server's CPU per configuration and writes bench/results/server_load.json (``--bulk N``: reads
are CheckBulkPermissions of N items, written to server_load_bulkN.json).

    .venv/bin/python bench/server_load.py [--seconds 10] [--clients 2] [--threads 8] [--bulk 20]

The clients run on the same machine, so they take CPU from the server: compare configurations
with each other, not with numbers measured elsewhere.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

KEY = "bench-key"
SCHEMA = """
definition user {}
definition group {
    relation member: user | group#member
}
definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}
definition document {
    relation folder: folder
    relation viewer: user | group#member
    relation owner: user
    permission edit = owner
    permission view = viewer + edit + folder->view
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(db: str, workers: int, port: int, threads: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "zanzi",
        "serve",
        "--grpc-preshared-key",
        KEY,
        "--grpc-addr",
        f"127.0.0.1:{port}",
        "--datastore",
        f"sqlite:///{db}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                return proc
        except grpc.RpcError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def rel(text: str) -> Any:
    from authzed.api.v1 import ObjectReference, Relationship, SubjectReference

    res, _, sub = text.partition("@")
    obj, _, relation = res.partition("#")
    sobj, _, srel = sub.partition("#")
    t, _, i = obj.partition(":")
    st, _, si = sobj.partition(":")
    return Relationship(
        resource=ObjectReference(object_type=t, object_id=i),
        relation=relation,
        subject=SubjectReference(
            object=ObjectReference(object_type=st, object_id=si), optional_relation=srel
        ),
    )


def load(port: int) -> None:
    from authzed.api.v1 import (
        InsecureClient,
        RelationshipUpdate,
        WriteRelationshipsRequest,
        WriteSchemaRequest,
    )

    client = InsecureClient(f"127.0.0.1:{port}", KEY)
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    rels = []
    for g in range(20):
        rels += [f"group:g{g}#member@user:u{u}" for u in range(g * 5, g * 5 + 10)]
        if g:
            rels.append(f"group:g{g}#member@group:g{g // 3}#member")
    for f in range(20):
        rels.append(f"folder:f{f}#viewer@group:g{f}#member")
        if f:
            rels.append(f"folder:f{f}#parent@folder:f{f // 2}")
    for d in range(500):
        rels.append(f"document:d{d}#folder@folder:f{d % 20}")
        rels.append(f"document:d{d}#owner@user:u{d % 100}")
    for start_ in range(0, len(rels), 500):
        updates = [
            RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=rel(r))
            for r in rels[start_ : start_ + 500]
        ]
        client.WriteRelationships(WriteRelationshipsRequest(updates=updates))


def client_process(port: int, threads: int, seconds: float, seed: int, bulk: int, out: Any) -> None:
    """Calls through one gRPC connection per thread; checks are sent pre-serialized (raw bytes) so that the
    client spends as little CPU as possible and the server is what is measured."""
    import grpc
    from authzed.api.v1 import (
        CheckBulkPermissionsRequest,
        CheckBulkPermissionsRequestItem,
        CheckPermissionRequest,
        Consistency,
        ObjectReference,
        RelationshipUpdate,
        SubjectReference,
        WriteRelationshipsRequest,
        WriteRelationshipsResponse,
    )

    metadata = (("authorization", f"Bearer {KEY}"),)

    def check_bytes(doc: int, user: int, consistency: Any) -> bytes:
        return CheckPermissionRequest(
            consistency=consistency,
            resource=ObjectReference(object_type="document", object_id=f"d{doc}"),
            permission="view",
            subject=SubjectReference(object=ObjectReference(object_type="user", object_id=f"u{user}")),
        ).SerializeToString()

    fast = [
        check_bytes(d, u, Consistency(minimize_latency=True))
        for d in range(0, 500, 7)
        for u in range(0, 100, 3)
    ]
    rnd0 = random.Random(seed)
    bulks = (
        [
            CheckBulkPermissionsRequest(
                consistency=Consistency(minimize_latency=True),
                items=[
                    CheckBulkPermissionsRequestItem(
                        resource=ObjectReference(object_type="document", object_id=f"d{rnd0.randrange(500)}"),
                        permission="view",
                        subject=SubjectReference(
                            object=ObjectReference(object_type="user", object_id=f"u{rnd0.randrange(100)}")
                        ),
                    )
                    for _ in range(bulk)
                ],
            ).SerializeToString()
            for _ in range(50)
        ]
        if bulk
        else []
    )
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(n: int) -> None:
        # One connection per thread: SO_REUSEPORT spreads connections (not calls) over workers.
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        check = channel.unary_unary("/authzed.api.v1.PermissionsService/CheckPermission")
        check_bulk = channel.unary_unary("/authzed.api.v1.PermissionsService/CheckBulkPermissions")
        write = channel.unary_unary("/authzed.api.v1.PermissionsService/WriteRelationships")
        rnd = random.Random(seed * 1000 + n)
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                if rnd.random() < 0.1:
                    update = RelationshipUpdate(
                        operation=RelationshipUpdate.OPERATION_TOUCH,
                        relationship=rel(
                            f"document:w{seed}_{n}_{rnd.randrange(50)}#viewer@user:u{rnd.randrange(100)}"
                        ),
                    )
                    raw = write(
                        WriteRelationshipsRequest(updates=[update]).SerializeToString(), metadata=metadata
                    )
                    token = WriteRelationshipsResponse.FromString(raw).written_at
                    check(
                        check_bytes(
                            rnd.randrange(500), rnd.randrange(100), Consistency(at_least_as_fresh=token)
                        ),
                        metadata=metadata,
                    )
                elif bulks:
                    check_bulk(rnd.choice(bulks), metadata=metadata)
                else:
                    check(rnd.choice(fast), metadata=metadata)
            except grpc.RpcError:
                errors[0] += 1
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((latencies, errors[0]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (worker processes), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start(os.path.join(tmp, "bench.db"), workers, port, args.server_threads)
        try:
            load(port)
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            clients = [
                ctx.Process(
                    target=client_process, args=(port, args.threads, args.seconds, i, args.bulk, queue)
                )
                for i in range(args.clients)
            ]
            started = time.monotonic()
            cpu_before = cpu_seconds(proc.pid)
            for c in clients:
                c.start()
            results = [queue.get() for _ in clients]
            elapsed = time.monotonic() - started
            server_cpu = cpu_seconds(proc.pid) - cpu_before
            for c in clients:
                c.join()
        finally:
            proc.terminate()
            proc.wait(30)
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    q = statistics.quantiles(latencies, n=100)
    return {
        "workers": workers,
        "bulk": args.bulk,
        "server_threads": args.server_threads,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / args.seconds, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "server_cores_busy": round(server_cpu / elapsed, 2),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, len(latencies)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--threads", type=int, default=8, help="threads per client process")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--server-threads", type=int, default=32, help="request threads per worker")
    ap.add_argument("--bulk", type=int, default=0, help="read with CheckBulkPermissions of this many items")
    args = ap.parse_args()
    rows = [measure(w, args) for w in args.workers]
    columns = [
        ("workers", "workers", 8),
        ("req/s", "requests_per_second", 9),
        ("p50 ms", "p50_ms", 8),
        ("p99 ms", "p99_ms", 8),
        ("errors", "errors", 7),
        ("cores", "server_cores_busy", 6),
        ("cpu ms/req", "server_cpu_ms_per_request", 11),
    ]
    print(" ".join(f"{title:>{width}}" for title, _, width in columns))
    for r in rows:
        print(" ".join(f"{r[key]!s:>{width}}" for _, key, width in columns))
    name = f"server_load_bulk{args.bulk}.json" if args.bulk else "server_load.json"
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    meta = {"cpus": os.cpu_count(), "python": platform.python_version(), "args": vars(args)}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
