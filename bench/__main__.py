"""``python -m bench``: Zanzi beside the SpiceDB engine on seeded, generated workloads.

Prints the results table and the issue's targets, and writes ``<out>/<timestamp>.json``,
``<out>/latest.json``, ``<out>/latest.md`` and ``<out>/latest.png``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import compare, plot, report
from bench.plan import FULL_WORKLOADS, MODES, QUICK_WORKLOADS
from bench.run import Run, machine
from bench.workloads import expand


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="docs only, small samples (under 2 minutes)")
    ap.add_argument(
        "--workloads",
        type=_list,
        help="comma-separated: docs, scale (or scale-100k, scale-1M, scale-10M), deep, wide, caveated",
    )
    ap.add_argument("--modes", type=_list, default=list(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument(
        "--time-limit", type=float, default=45.0, help="minutes; later cases are skipped (default 45)"
    )
    args = ap.parse_args(argv)
    names = expand(args.workloads or list(QUICK_WORKLOADS if args.quick else FULL_WORKLOADS))
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        ap.error(f"unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")

    meta = machine()
    if meta["loadavg_start"][0] > 0.5:
        print(f"warning: load average {meta['loadavg_start'][0]:.2f} before the run; figures will be noisy")
    kind = "quick" if args.quick else "full"
    print(f"bench: {', '.join(names)} x {', '.join(args.modes)} ({kind}, seed {args.seed})")
    started = time.monotonic()
    run = Run(names, args.modes, args.seed, args.quick, args.time_limit * 60)
    run.execute()
    disagreements = compare.annotate(run.cases)
    rows = [r for c in run.cases for r in c.get("rows", [])]
    targets = report.targets(rows)
    meta.update(
        seconds=round(time.monotonic() - started, 1),
        loadavg_end=os.getloadavg(),
        quick=args.quick,
        seed=args.seed,
        workloads=names,
        modes=args.modes,
    )

    print()
    print(report.table(rows))
    print(report.SPICEDB_NOTE)
    print("answers: S<n> / R<n> = n answers equal to the SpiceDB engine's / the reference evaluator's")
    failed = [c for c in run.cases if "error" in c]
    for c in failed:
        print(f"FAILED {c['workload']} / {c['mode']}: {c['error']}")
    for s in run.skipped:
        print(f"skipped {s['workload']} / {s['mode']}: {s['reason']}")
    if disagreements:
        print(
            f"\n!!! {len(disagreements)} DISAGREEMENTS (examples; a benchmark of wrong answers is worthless):"
        )
        for d in disagreements[:40]:
            print(
                f"!!! {d['workload']} {d['mode']} {d['op']}: {d['probe']} -> {d['answer']}, "
                f"{d['against']} says {d['expected']}"
            )
    print()
    print(report.targets_table(targets))

    result = {
        "meta": meta,
        "rows": rows,
        "targets": targets,
        "disagreements": disagreements,
        "skipped": run.skipped,
        "failed": [{k: c[k] for k in ("workload", "mode", "error")} for c in failed],
    }
    path = report.save(result, args.out)
    (args.out / "latest.md").write_text(
        report.markdown(rows) + "\n\n" + report.targets_table(targets, md=True) + "\n"
    )
    why = plot.plot(rows, args.out / "latest.png", title=f"zanzi bench, {meta['commit']}, seed {args.seed}")
    print(f"\nsaved {path}, latest.json, latest.md" + (f"; {why}" if why else ", latest.png"))
    print(f"took {meta['seconds']:.0f} s")
    return 1 if disagreements or failed else 0


if __name__ == "__main__":
    sys.exit(main())
