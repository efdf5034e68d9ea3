"""One case (a workload in one mode) in a fresh process: ``python -m bench.worker SPEC.json``.

A fresh process per case keeps the memory figures honest (RSS before and after the load) and
keeps one mode's caches and garbage out of the next one's timings. The spec names the
workload, seed, mode, phase and plan; the result (rows, answers) goes to ``spec["out"]``.

Phases: ``all`` (load, then measure), and for embedded SQLite ``load`` (import into a new
file) then ``serve`` (another fresh process opens that file: its RSS growth and the time to
its first answer are what a restarted application pays).
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.drivers import Driver, Embedded
from bench.ops import Measure
from bench.plan import Plan
from bench.timing import rss_bytes
from bench.workloads import Sizes, Workload, build

_OUT: Path | None = None  # where partial results go, so a case that times out keeps its rows


def _measure(d: Driver, w: Workload, plan: Plan, threads: bool = False) -> Measure:
    def save(m: Measure, doing: str) -> None:
        if _OUT is not None:
            _OUT.write_text(json.dumps({"rows": m.rows, "answers": m.answers, "doing": doing}))

    return Measure(d, w, plan, threads=threads, checkpoint=save)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    plan = Plan(**spec["plan"])
    w = build(spec["workload"], spec["seed"], Sizes(plan.check_pool, plan.bulk_batches))
    mode, phase = spec["mode"], spec.get("phase", "all")
    if mode == "memory":
        return _loaded(Embedded("memory://"), w, plan, "import_relationships, one transaction")
    if mode == "sqlite" and phase == "load":
        return _sqlite_load(w, spec["db"])
    if mode == "sqlite":
        return _sqlite_serve(w, plan, spec["db"])
    if mode == "server":
        return _server(w, plan)
    if mode == "spicedb":
        from bench.spicedb import SpiceDB

        note = "WriteRelationships of 1,000 TOUCHes (its ffi has no bulk import)"
        return _loaded(SpiceDB(), w, plan, note, threads=True)
    raise ValueError(f"unknown mode {mode!r} / phase {phase!r}")


def _loaded(d: Driver, w: Workload, plan: Plan, how: str, threads: bool = False) -> dict[str, Any]:
    """Load, then measure; memory is the growth of the process doing the work."""
    try:
        gc.collect()
        rss0 = d.rss()
        d.write_schema(w.schema)
        t0 = time.perf_counter()
        n = d.load(w.relationships())
        load_s = time.perf_counter() - t0
        m = _measure(d, w, plan, threads=threads)
        m.doing("waiting for the first allowed check")
        ready = m.wait_visible()
        gc.collect()
        rss1 = d.rss()
        m.row(
            "load",
            "bulk import",
            n=n,
            ops_per_s=n / load_s,
            rss_mb=rss1 / 2**20,
            bytes_per_rel=(rss1 - rss0) / max(1, n),
            note=f"{how}; {load_s:.1f} s; first allowed check {ready:.2f} s later",
        )
        m.run_all()
        return {"rows": m.rows, "answers": m.answers}
    finally:
        d.close()


def _sqlite_load(w: Workload, db: str) -> dict[str, Any]:
    d = Embedded(f"sqlite:///{db}")
    try:
        d.write_schema(w.schema)
        t0 = time.perf_counter()
        n = d.load(w.relationships())
        load_s = time.perf_counter() - t0
    finally:
        d.close()
    m = Measure(d, w, Plan())
    m.row(
        "load",
        "bulk import",
        n=n,
        ops_per_s=n / load_s,
        rss_mb=rss_bytes() / 2**20,
        note=f"import_relationships into a new SQLite file, one transaction; {load_s:.1f} s",
    )
    size = Path(db).stat().st_size
    m.rows[-1]["note"] += f"; file {size / 2**20:.0f} MB ({size / max(1, n):.0f} B/rel on disk)"
    return {"rows": m.rows, "answers": {}}


def _sqlite_serve(w: Workload, plan: Plan, db: str) -> dict[str, Any]:
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    d = Embedded(f"sqlite:///{db}")
    try:
        m = _measure(d, w, plan)
        m.wait_visible()
        ready = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_bytes()
        m.row(
            "open",
            "open + first check",
            n=1,
            p50_us=ready * 1e6,
            p99_us=ready * 1e6,
            rss_mb=rss1 / 2**20,
            bytes_per_rel=(rss1 - rss0) / max(1, w.count),
            note="a fresh process opens the loaded file and answers its first allowed check",
        )
        m.run_all()
        return {"rows": m.rows, "answers": m.answers}
    finally:
        d.close()


def _server(w: Workload, plan: Plan) -> dict[str, Any]:
    from bench.drivers import Client
    from bench.server import KEY, Server

    with tempfile.TemporaryDirectory(prefix="zanzi-bench-") as tmp:
        server = Server(Path(tmp)).start()
        try:
            how = "ImportBulkRelationships through the client, chunks of 1,000; RSS: server and its workers"
            return _loaded(Client(server.addr, KEY, server.pid), w, plan, how, threads=True)
        finally:
            server.stop()


def main() -> None:
    global _OUT
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = _OUT = Path(spec["out"])
    try:
        result = run(spec)
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        out.write_text(json.dumps(result))
        sys.exit(1)
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
