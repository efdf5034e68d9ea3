"""The PNG: check latency against data size (docs and scale) and against depth (deep).

Needs matplotlib (the ``bench`` extra); without it, :func:`plot` says so and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import MODE_NAMES

SIZES = {"docs": 32_084, "scale-100k": 100_000, "scale-1M": 1_000_000, "scale-10M": 10_000_000}


def _by_mode(rows: list[dict[str, Any]], match: Any) -> dict[str, list[tuple[float, float, float]]]:
    series: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows:
        x = match(r)
        if x is None or r.get("p50_us") is None:
            continue
        series.setdefault(r["mode"], []).append((x, r["p50_us"], r["p99_us"]))
    return {k: sorted(v) for k, v in series.items()}


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)


def plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> str | None:
    """Write the PNG; return why not when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'); no plot"

    def size_of(r: dict[str, Any]) -> float | None:
        ok = r["op"] == "check" and r["label"] in ("check", "check (context)") and r.get("clients", 1) == 1
        return SIZES.get(r["workload"]) if ok else None

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for mode, pts in _by_mode(rows, size_of).items():
        xs = [p[0] for p in pts]
        line = left.plot(xs, [p[1] for p in pts], "o-", label=f"{MODE_NAMES.get(mode, mode)} p50")[0]
        left.plot(
            xs,
            [p[2] for p in pts],
            "x--",
            color=line.get_color(),
            alpha=0.6,
            label=f"{MODE_NAMES.get(mode, mode)} p99",
        )
    left.set(xscale="log", yscale="log", xlabel="relationships", ylabel="check latency (µs)")
    left.set_title("check latency against size (docs shape)")
    left.grid(True, which="both", alpha=0.3)
    _legend(left)

    for kind, marker in (("groups", "o-"), ("folders", "s--")):

        def depth_of(r: dict[str, Any], kind: str = kind) -> float | None:
            prefix = f"check {kind} d="
            if r["workload"] != "deep" or r["op"] != "check" or not r["label"].startswith(prefix):
                return None
            if r.get("clients", 1) != 1:  # the 16-client row of depth 1 is another question
                return None
            return float(r["label"].removeprefix(prefix))

        for mode, pts in _by_mode(rows, depth_of).items():
            right.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker,
                label=f"{MODE_NAMES.get(mode, mode)}, {kind}",
            )
    right.set(yscale="log", xlabel="depth (nested groups / folder chain)", ylabel="check latency p50 (µs)")
    right.set_title("check latency against depth")
    right.grid(True, which="both", alpha=0.3)
    _legend(right)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
