"""The operations, run against one driver: each returns result rows and the answers it saw.

A row is a dict with the keys of :data:`ROW_KEYS`. Answers are grouped by operation key
(``"check|<label>"``, ``"lr|<label>"``...) and map a probe's key to what the driver said; they
are compared across modes by :mod:`bench.compare`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from bench.drivers import Driver
from bench.plan import Plan
from bench.probes import CheckProbe, answer_digest, write_probe
from bench.timing import Timed, run_loop, run_threads, tree_cpu_seconds
from bench.workloads import WRITE_DOCUMENT, Workload

ROW_KEYS = (
    "workload",
    "mode",
    "clients",
    "op",
    "label",
    "n",
    "ops_per_s",
    "p50_us",
    "p99_us",
    "rss_mb",
    "bytes_per_rel",
    "allowed_frac",
    "results",
    "vs_spicedb",
    "answers",
    "note",
)

Answers = dict[str, dict[str, str]]


def make_row(
    workload: str, mode: str, op: str, label: str = "", clients: int = 1, **values: Any
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(workload=workload, mode=mode, op=op, label=label or op, clients=clients, note="")
    row.update(values)
    return row


class Measure:
    """Runs the operations of one workload against one driver under one plan."""

    def __init__(
        self,
        driver: Driver,
        workload: Workload,
        plan: Plan,
        threads: bool = False,
        checkpoint: Callable[[Measure, str], None] | None = None,
    ) -> None:
        self.d, self.w, self.plan, self.threads = driver, workload, plan, threads
        driver.timeout = plan.lookup_timeout_s
        self.rows: list[dict[str, Any]] = []
        self.answers: Answers = {}
        self.checkpoint = checkpoint

    def doing(self, what: str) -> None:
        """Save what is measured so far (a case that times out keeps its finished rows)."""
        if self.checkpoint is not None:
            self.checkpoint(self, what)

    def row(self, op: str, label: str = "", timed: Timed | None = None, **values: Any) -> dict[str, Any]:
        stats = timed.stats() if timed is not None else {}
        r = make_row(self.w.name, self.d.mode, op, label, **{**stats, **values})
        if "rss_mb" not in values:
            r["rss_mb"] = self.d.rss() / 2**20
        if timed is not None and timed.error_count:
            r["note"] = "; ".join(
                x for x in (r["note"], f"{timed.error_count} calls failed: {timed.errors[0]}") if x
            )
            r["answers"] = r["answers"] or f"ERRORS {timed.error_count}/{timed.n}"
        self.rows.append(r)
        return r

    # -- freshness -----------------------------------------------------------------------------

    def wait_visible(self, timeout: float = 30.0) -> float:
        """Ask the sentinel at minimize_latency until it is allowed (SpiceDB's snapshots may lag
        5 s); the first call also builds whatever the mode builds lazily. Seconds taken."""
        start = time.perf_counter()
        call = self.d.check_call(self.w.sentinel)
        while True:
            try:
                answer = self.d.answer(call())
            except Exception as exc:  # noqa: BLE001 - reported as the answer
                answer = f"error: {exc}"
            if answer == "has" or time.perf_counter() - start > timeout:
                break
            time.sleep(0.05)
        if answer != "has":
            raise RuntimeError(f"the workload never became visible: sentinel answered {answer}")
        return time.perf_counter() - start

    # -- operations ----------------------------------------------------------------------------

    def run_all(self) -> None:
        for i, label in enumerate(self.w.checks):
            self.doing(label)
            self.check(label, with_threads=self.threads and i == 0)
        self.doing("bulk check")
        self.bulk()
        for lp in self.w.lookups:
            self.doing(lp.label)
            self.lookup("lr", lp.label, functools.partial(self.d.lookup_resources, lp), lp.expected)
        for sp in self.w.subject_lookups:
            self.doing(sp.label)
            self.lookup("ls", sp.label, functools.partial(self.d.lookup_subjects, sp), sp.expected)
        self.doing("write+check")
        self.write_then_check()

    def check(self, label: str, with_threads: bool = False) -> None:
        pool = self.w.checks[label][: self.plan.check_pool]
        calls = [self.d.check_call(p) for p in pool]
        keep = min(self.plan.verify_n, len(pool))
        timed = run_loop(
            calls, budget_s=self.plan.check_budget_s, keep=keep, min_calls=min(keep, self.plan.min_verify)
        )
        reached = pool[: len(timed.responses)]
        seen = {p.key(): self.d.answer(r) for p, r in zip(reached, timed.responses, strict=True)}
        full = self.verify(reached)
        self.answers[f"check|{label}"] = full
        self.answers[f"check-min|{label}"] = seen
        if self.w.reference is not None:
            ref = {p.key(): self.w.reference(p) for p in reached}
            self.answers[f"ref|check|{label}"] = {k: v for k, v in ref.items() if v is not None}
        values = list(full.values())
        allowed = sum(a == "has" for a in values) / max(1, len(values))
        note = f"{len(pool)} distinct probes"
        if "cond" in values:
            note += f"; {values.count('cond') / len(values):.0%} conditional (context missing)"
        self.row("check", label, timed, allowed_frac=allowed, note=note)
        if with_threads:
            self.check_threads(label, pool)

    def verify(self, probes: list[CheckProbe]) -> dict[str, str]:
        """fully_consistent answers to ``probes``, one check at a time, for at most the check
        budget (and at least ``plan.min_verify`` probes)."""
        out: dict[str, str] = {}
        deadline = time.monotonic() + self.plan.check_budget_s
        for i, p in enumerate(probes):
            if i >= self.plan.min_verify and time.monotonic() > deadline:
                break
            try:
                out[p.key()] = self.d.answer(self.d.check_call(p, "full")())
            except Exception as exc:  # noqa: BLE001
                out[p.key()] = f"error: {exc}"
        return out

    def check_threads(self, label: str, pool: list[CheckProbe]) -> None:
        n = self.plan.thread_clients
        drivers = [self.d.for_thread() for _ in range(n)]
        per_thread = [[d.check_call(p) for p in pool[k::n]] for k, d in enumerate(drivers)]
        for calls in per_thread:  # connect, and warm whichever server worker each one reaches
            for call in calls[:3]:
                try:
                    call()
                except Exception:  # noqa: BLE001, S110 - counted in the timed run
                    pass
        pid = getattr(self.d, "server_pid", None)
        cpu0, own0 = (tree_cpu_seconds(pid) if pid else 0.0), time.process_time()
        timed = run_threads(per_thread, budget_s=self.plan.thread_budget_s)
        note = f"{n} client threads, each its own connection" if pid else f"{n} threads"
        if pid:
            server = (tree_cpu_seconds(pid) - cpu0) / timed.seconds
            client = (time.process_time() - own0) / timed.seconds
            note += f"; CPU: server {server:.2f} cores, client {client:.2f} cores"
        r = self.row("check", label, timed, note=note)
        r["clients"] = n

    def bulk(self) -> None:
        probes = self.w.bulk[: 100 * self.plan.bulk_batches]
        batches = [probes[i : i + 100] for i in range(0, len(probes), 100)]
        if not batches:
            return
        first = batches[0]
        calls = [self.d.bulk_call(b) for b in batches]
        timed = run_loop(calls, budget_s=self.plan.bulk_budget_s)
        try:
            full = self.d.bulk_answers(self.d.bulk_call(first, "full")())
        except Exception as exc:  # noqa: BLE001
            full = [f"error: {exc}"] * len(first)
        self.answers["bulk|bulk check"] = {p.key(): a for p, a in zip(first, full, strict=True)}
        if self.w.reference is not None:
            ref = {p.key(): self.w.reference(p) for p in first}
            self.answers["ref|bulk|bulk check"] = {k: v for k, v in ref.items() if v is not None}
        checks_per_s = (timed.stats()["ops_per_s"] or 0) * 100
        self.row("bulk", "bulk check", timed, note=f"100 items a request; {checks_per_s:,.0f} checks/s")

    def lookup(self, op: str, label: str, fn: Callable[[str], list[str]], expected: int | None) -> None:
        """One fully_consistent call for the answer, then timed calls at minimize_latency."""
        t0 = time.perf_counter_ns()
        try:
            ids = fn("full")
        except Exception as exc:  # noqa: BLE001
            self.answers[f"{op}|{label}"] = {label: f"error: {exc}"}
            self.row(op, label, note=f"error: {str(exc)[:120]}")
            return
        first = time.perf_counter_ns() - t0
        self.answers[f"{op}|{label}"] = {label: f"{len(ids)} #{answer_digest(ids)}"}
        if expected is not None:
            self.answers[f"ref|{op}|{label}"] = {label: str(expected)}
        timed = run_loop(
            [lambda: fn("min")],
            budget_s=self.plan.lookup_budget_s,
            max_calls=self.plan.lookup_repeats,
            min_calls=0,
        )
        note = ""
        if not timed.n:
            timed, note = Timed([first], first / 1e9), "timed once, at fully_consistent"
        self.row(op, label, timed, results=len(ids), note=note)

    def write_then_check(self) -> None:
        failures: list[str] = []

        def once(i: int) -> Callable[[], None]:
            probe = write_probe(i, WRITE_DOCUMENT)

            def call() -> None:
                answer = self.d.check_at(probe.check, self.d.write(probe.relationship))
                if answer != "has":
                    failures.append(answer)

            return call

        calls = [once(i) for i in range(self.plan.write_reps)]
        timed = run_loop(calls, budget_s=self.plan.write_budget_s)
        bad = f"FAILED {len(failures)}/{timed.n} (a check at its write's token did not see it)"
        self.row("write+check", "write, then check at its token", timed, answers=bad if failures else "ok")
