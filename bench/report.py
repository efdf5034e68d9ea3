"""The results table, the issue's targets, and the JSON written after a run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

Row = dict[str, Any]

MODE_NAMES = {
    "memory": "embedded memory",
    "sqlite": "embedded sqlite",
    "server": "server sqlite",
    "spicedb": "SpiceDB*",
}
SPICEDB_NOTE = (
    "* SpiceDB v1.54 engine from ../shared/peers, in-process: in-memory datastore, caches switched off "
    "in this build; checks through its ffi, lookups through its unix-socket gRPC; timed at "
    "minimize_latency, answers compared at fully_consistent."
)
COLUMNS = (
    "workload",
    "mode",
    "op",
    "label",
    "cl",
    "n",
    "ops/s",
    "p50",
    "p99",
    "RSS MB",
    "B/rel",
    "x SpiceDB",
    "answers",
)


def duration(us: float | None) -> str:
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.1f} µs"
    if us < 1e6:
        return f"{us / 1e3:.2f} ms"
    return f"{us / 1e6:.2f} s"


def number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if isinstance(x, int) or abs(x) >= 10 else f"{x:.3g}"


def ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2f}x"


def cells(r: Row) -> list[str]:
    label = r["label"] if r["label"] != r["op"] else ""
    if r.get("allowed_frac") is not None:
        label += f" [allowed {r['allowed_frac']:.0%}]"
    return [
        r["workload"],
        MODE_NAMES.get(r["mode"], r["mode"]),
        r["op"],
        label.strip(),
        str(r.get("clients") or 1),
        number(r.get("n")),
        number(r.get("ops_per_s")),
        duration(r.get("p50_us")),
        duration(r.get("p99_us")),
        number(r.get("rss_mb")),
        number(r.get("bytes_per_rel")),
        ratio(r.get("vs_spicedb")),
        r.get("answers") or "",
    ]


def table(rows: list[Row]) -> str:
    body = [list(COLUMNS), *[cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
    numeric = {5, 6, 7, 8, 9, 10, 11}
    out = []
    for j, line in enumerate(body):
        text = "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        out.append(text.rstrip())
        if j == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


# -- targets ---------------------------------------------------------------------------------


def find(
    rows: list[Row], workload: str, mode: str, op: str, label: str | None = None, clients: int = 1
) -> Row | None:
    for r in rows:
        if (r["workload"], r["mode"], r["op"], r.get("clients", 1)) != (workload, mode, op, clients):
            continue
        if label is None or r["label"] == label or r["label"].startswith(label):
            return r
    return None


def _figure(r: Row | None, what: Callable[[Row], str]) -> str:
    return what(r) if r is not None else "not measured"


def _tp(r: Row) -> str:
    return f"{number(r['ops_per_s'])}/s, p99 {duration(r['p99_us'])}"


def targets(rows: list[Row]) -> list[dict[str, str]]:
    """The issue's targets: each with Zanzi's figure, the SpiceDB engine's, and met or missed."""
    out: list[dict[str, str]] = []

    def add(
        target: str, r: Row | None, what: Callable[[Row], str], ok: Callable[[Row], bool], peer: str
    ) -> None:
        status = "not measured" if r is None else ("met" if ok(r) else "MISSED")
        out.append({"target": target, "measured": _figure(r, what), "spicedb": peer, "status": status})

    spice = find(rows, "docs", "spicedb", "check")
    for mode in ("memory", "sqlite"):
        add(
            f"docs, embedded {mode} check: >= 100,000/s, p99 <= 50 µs",
            find(rows, "docs", mode, "check"),
            _tp,
            lambda r: r["ops_per_s"] >= 100_000 and r["p99_us"] <= 50,
            _figure(spice, _tp),
        )
    spice16 = find(rows, "docs", "spicedb", "check", clients=16)
    add(
        "docs, server check, 16 clients: >= 5,000/s, p99 <= 10 ms",
        find(rows, "docs", "server", "check", clients=16),
        _tp,
        lambda r: r["ops_per_s"] >= 5000 and r["p99_us"] <= 10_000,
        _figure(spice16, _tp) + " (16 threads, ffi)" if spice16 else "not measured",
    )
    lr = find(rows, "docs", "spicedb", "lr", "LR ~3.5k")
    for mode in ("memory", "sqlite"):
        add(
            f"docs, LookupResources ~3,500 results, embedded {mode}: <= 20 ms (p50)",
            find(rows, "docs", mode, "lr", "LR ~3.5k"),
            lambda r: f"{duration(r['p50_us'])} ({r['results']} results)",
            lambda r: r["p50_us"] <= 20_000,
            _figure(lr, lambda r: duration(r["p50_us"])),
        )
    for mode in ("memory", "sqlite"):
        add(
            f"deep, embedded {mode}: a depth-30 check <= 2x a depth-1 check (p50)",
            *_depth(rows, mode),
            _depth_text(rows, "spicedb"),
        )
    open_row = find(rows, "scale-10M", "sqlite", "open")
    add(
        "scale-10M on SQLite: index ready (open + first check) <= 60 s",
        open_row,
        lambda r: duration(r["p50_us"]),
        lambda r: r["p50_us"] <= 60e6,
        "not run (see skipped)",
    )
    add(
        "scale-10M on SQLite: embedded check p99 <= 100 µs",
        find(rows, "scale-10M", "sqlite", "check"),
        _tp,
        lambda r: r["p99_us"] <= 100,
        "not run (see skipped)",
    )
    add(
        "scale-10M on SQLite: <= 300 bytes of RAM per relationship",
        open_row,
        lambda r: f"{number(r['bytes_per_rel'])} B/rel (RSS {number(r['rss_mb'])} MB)",
        lambda r: r["bytes_per_rel"] <= 300,
        "not run (see skipped)",
    )
    spice_load = find(rows, "docs", "spicedb", "load")
    for workload in ("docs", "scale-1M", "scale-10M"):
        add(
            f"{workload}: import >= 100,000 relationships/s into SQLite",
            find(rows, workload, "sqlite", "load"),
            lambda r: f"{number(r['ops_per_s'])} rel/s",
            lambda r: r["ops_per_s"] >= 100_000,
            _figure(spice_load, lambda r: f"{number(r['ops_per_s'])} rel/s (docs, WriteRelationships)"),
        )
    spice_w = find(rows, "docs", "spicedb", "write+check")
    for mode in ("sqlite", "server"):
        add(
            f"docs, write then check at its token, {mode}: p50 <= 5 ms",
            find(rows, "docs", mode, "write+check"),
            lambda r: f"p50 {duration(r['p50_us'])}",
            lambda r: r["p50_us"] <= 5000,
            _figure(spice_w, lambda r: f"p50 {duration(r['p50_us'])}"),
        )
    return out


def _depth_ratios(rows: list[Row], mode: str) -> dict[str, float] | None:
    out = {}
    for kind in ("groups", "folders"):
        one = find(rows, "deep", mode, "check", f"check {kind} d=1")
        thirty = find(rows, "deep", mode, "check", f"check {kind} d=30")
        if one is None or thirty is None or not one["p50_us"] or thirty["p50_us"] is None:
            return None
        out[kind] = thirty["p50_us"] / one["p50_us"]
    return out


def _depth_text(rows: list[Row], mode: str) -> str:
    ratios = _depth_ratios(rows, mode)
    if ratios is None:
        return "not measured"
    return ", ".join(f"{kind} {x:.2f}x" for kind, x in ratios.items())


def _depth(rows: list[Row], mode: str) -> tuple[Row | None, Callable[[Row], str], Callable[[Row], bool]]:
    ratios = _depth_ratios(rows, mode)
    if ratios is None:
        return None, str, bool
    row: Row = {"ratios": ratios}
    return row, lambda _: _depth_text(rows, mode), lambda _: max(ratios.values()) <= 2.0


def targets_table(items: list[dict[str, str]], md: bool = False) -> str:
    head = ("target", "Zanzi", "SpiceDB engine", "status")
    body = [[t["target"], t["measured"], t["spicedb"], t["status"]] for t in items]
    if md:
        lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|"]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(x[i]) for x in [list(head), *body]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(lines)


def save(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}.json"
    text = json.dumps(result, indent=1, default=str)
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path
