"""How much of each operation a run measures: sample sizes and time budgets per workload and mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

MODES = ("memory", "sqlite", "server", "spicedb")
QUICK_WORKLOADS = ("docs",)
FULL_WORKLOADS = ("docs", "scale", "deep", "wide", "caveated")

# Modes that cannot or should not run a workload, and why (shown in the skipped list).
SKIP: dict[tuple[str, str], str] = {
    ("scale-10M", "memory"): "10M runs on embedded SQLite only (the issue's target; RAM and time)",
    ("scale-10M", "server"): "10M runs on embedded SQLite only (loading it again over gRPC takes too long)",
    ("scale-10M", "spicedb"): "SpiceDB's memory store takes ~4.7 KB a relationship (~47 GB for 10M)",
}

# Rough RAM (bytes per relationship) a mode needs, to refuse a case that cannot fit.
RAM_PER_REL = {"memory": 2_500, "sqlite": 1_500, "server": 3_000, "spicedb": 6_000}


@dataclass(frozen=True)
class Plan:
    check_pool: int = 20_000  # distinct probes; the timed loop makes one pass at most
    check_budget_s: float = 3.0
    verify_n: int = 400  # probes answered fully_consistent and compared
    min_verify: int = 20  # ... at least, however slow the mode
    thread_clients: int = 16
    thread_budget_s: float = 3.0
    bulk_batches: int = 20
    bulk_budget_s: float = 3.0
    lookup_repeats: int = 5
    lookup_budget_s: float = 4.0
    lookup_timeout_s: float = 120.0  # deadline of one streamed lookup (server, SpiceDB)
    write_reps: int = 200
    write_budget_s: float = 3.0
    timeout_s: float = 900.0  # the whole case, in its subprocess

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


QUICK = Plan(
    check_pool=3_000,
    check_budget_s=1.0,
    verify_n=150,
    thread_budget_s=1.5,
    bulk_batches=4,
    bulk_budget_s=0.8,
    lookup_repeats=2,
    lookup_budget_s=0.8,
    lookup_timeout_s=30.0,
    write_reps=40,
    write_budget_s=0.8,
    timeout_s=120.0,
)


def plan_for(workload: str, mode: str, quick: bool) -> Plan:
    """The plan of one case: the SpiceDB engine scans its memory store, so its samples shrink
    as the data grows; the big workloads get more time."""
    p = QUICK if quick else Plan()
    if workload in ("scale-1M", "scale-10M"):
        p = replace(p, verify_n=200, lookup_repeats=3, lookup_budget_s=10.0, timeout_s=1800.0)
    if mode == "spicedb":
        if workload == "scale-100k":
            p = replace(p, verify_n=min(p.verify_n, 100), check_budget_s=4.0, lookup_repeats=2)
        if workload == "wide":  # a check of the document shared with 10k groups takes ~10 s
            p = replace(p, min_verify=3, bulk_batches=1)
        if workload == "scale-1M":
            p = replace(
                p,
                verify_n=30,
                check_budget_s=8.0,
                thread_budget_s=8.0,
                bulk_batches=1,
                bulk_budget_s=1.0,
                lookup_repeats=1,
                write_reps=10,
            )
    return p
