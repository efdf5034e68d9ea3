"""Timed loops, percentiles, and what a process costs (RSS, CPU)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timed:
    """Latencies (ns) of the calls made, the wall time, and the responses of the first calls."""

    latencies: list[int]
    seconds: float
    responses: list[Any] = field(default_factory=list)
    threads: int = 1
    errors: list[str] = field(default_factory=list)  # the first few exceptions raised by calls
    error_count: int = 0

    @property
    def n(self) -> int:
        return len(self.latencies)

    def stats(self) -> dict[str, float | int | None]:
        lat = sorted(self.latencies)
        return {
            "n": len(lat),
            "ops_per_s": len(lat) / self.seconds if self.seconds > 0 else None,
            "p50_us": percentile(lat, 50) / 1e3 if lat else None,
            "p99_us": percentile(lat, 99) / 1e3 if lat else None,
        }


def percentile(sorted_values: Sequence[int], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return float(sorted_values[k])


def run_loop(
    calls: Sequence[Callable[[], Any]],
    *,
    budget_s: float,
    max_calls: int | None = None,
    keep: int = 0,
    min_calls: int = 1,
) -> Timed:
    """Call ``calls`` in order (cycling if ``max_calls`` exceeds them) until ``budget_s`` has
    passed or ``max_calls`` were made; keep the responses of the first ``keep`` calls."""
    limit = len(calls) if max_calls is None else max_calls
    latencies: list[int] = []
    responses: list[Any] = []
    clock = time.perf_counter_ns
    n = len(calls)
    start = clock()
    deadline = start + int(budget_s * 1e9)
    errors: list[str] = []
    error_count = 0
    i = 0
    while i < limit:
        t0 = clock()
        if t0 >= deadline and i >= min_calls:
            break
        try:
            r = calls[i % n]()
        except Exception as exc:  # noqa: BLE001 - a failing call is counted, not fatal
            r = exc
            error_count += 1
            if len(errors) < 3:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        latencies.append(clock() - t0)
        if i < keep:
            responses.append(r)
        i += 1
    return Timed(latencies, (clock() - start) / 1e9, responses, 1, errors, error_count)


def run_threads(per_thread: Sequence[Sequence[Callable[[], Any]]], *, budget_s: float) -> Timed:
    """One thread per list of calls, each cycling through its calls until ``budget_s``; the
    throughput is every call made over the wall time."""
    lists: list[list[int]] = [[] for _ in per_thread]
    errors: list[str] = []
    error_count = [0]
    barrier = threading.Barrier(len(per_thread) + 1)
    deadline = [0]

    def work(idx: int) -> None:
        calls, lat, clock = per_thread[idx], lists[idx], time.perf_counter_ns
        barrier.wait()
        i = 0
        while True:
            t0 = clock()
            if t0 >= deadline[0]:
                return
            try:
                calls[i % len(calls)]()
            except Exception as exc:  # noqa: BLE001 - a failing call is counted, not fatal
                error_count[0] += 1
                if len(errors) < 3:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            lat.append(clock() - t0)
            i += 1

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(len(per_thread))]
    for t in threads:
        t.start()
    start = time.perf_counter_ns()
    deadline[0] = start + int(budget_s * 1e9)
    barrier.wait()
    for t in threads:
        t.join()
    seconds = (time.perf_counter_ns() - start) / 1e9
    return Timed([x for lat in lists for x in lat], seconds, [], len(lists), errors, error_count[0])


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of one process."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            for child in text.split():
                out.append(int(child))
                out.extend(children(int(child)))
    except OSError:
        pass
    return out


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and its descendants (a server's supervisor and its workers)."""
    return sum(rss_bytes(p) for p in [pid, *children(pid)])


def tree_cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def mem_available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
