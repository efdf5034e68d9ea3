"""What a caveat costs a check: the same check, plain and caveated, embedded on memory and SQLite.

Also times the CEL libraries considered for caveats on one expression, when installed
(``cel-python``'s ``celpy``, the Rust-based ``common-expression-language``), next to the one
Zanzi uses (``cel-expr-python``). Prints a table and writes bench/results/caveat_cost.json.

    .venv/bin/python bench/caveat_cost.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from zanzi.api.service import Service

SCHEMA = """
definition user {}
caveat min_level(level int, required int) {
    level >= required
}
definition document {
    relation viewer: user | user with min_level
    permission view = viewer
}
"""


def _time(fn: Any, n: int) -> dict[str, float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] * 1e6,
        "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
        "mean_us": statistics.fmean(samples) * 1e6,
    }


def bench_checks(n: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in [("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/bench.db")]:
            with Service.open(url) as db:
                db.write_schema(SCHEMA)
                db.write_relationships(
                    [
                        "document:plain#viewer@user:amy",
                        'document:cav#viewer@user:amy[min_level:{"required":3}]',
                    ]
                )
                plain = _time(lambda: db.check("document:plain", "view", "user:amy"), n)
                caveated = _time(
                    lambda: db.check("document:cav", "view", "user:amy", context={"level": 5}), n
                )
                rows.append({"backend": name, "check": "plain", **plain})
                rows.append({"backend": name, "check": "caveated", **caveated})
    return rows


def bench_libraries(n: int) -> list[dict[str, Any]]:
    rows = []
    from cel_expr_python import cel  # type: ignore[import-untyped]

    env = cel.NewEnv(variables={"level": cel.Type.INT, "required": cel.Type.INT})
    expr = env.compile("level >= required")
    rows.append(
        {
            "library": "cel-expr-python (cel-cpp)",
            **_time(lambda: expr.eval(data={"level": 5, "required": 3}), n),
        }
    )
    try:
        import celpy  # type: ignore[import-not-found]
        from celpy import celtypes  # type: ignore[import-not-found]

        cenv = celpy.Environment(annotations={"level": celtypes.IntType, "required": celtypes.IntType})
        prog = cenv.program(cenv.compile("level >= required"))
        act = {"level": celtypes.IntType(5), "required": celtypes.IntType(3)}
        rows.append(
            {"library": "cel-python (pure Python)", **_time(lambda: prog.evaluate(act), max(500, n // 20))}
        )
    except ImportError:
        rows.append({"library": "cel-python (pure Python)", "note": "not installed"})
    try:
        import cel as rust_cel  # type: ignore[import-not-found]

        rprog = rust_cel.compile("level >= required")
        rows.append(
            {
                "library": "common-expression-language (Rust)",
                **_time(lambda: rprog.execute({"level": 5, "required": 3}), n),
            }
        )
    except (ImportError, AttributeError):
        rows.append({"library": "common-expression-language (Rust)", "note": "not installed"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    checks = bench_checks(args.n)
    libraries = bench_libraries(args.n)
    print(f"{'backend':8} {'check':9} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    for r in checks:
        print(f"{r['backend']:8} {r['check']:9} {r['p50_us']:8.1f} {r['p99_us']:8.1f} {r['mean_us']:8.1f}")
    print()
    print(f"{'CEL library':36} {'p50 µs':>8} {'p99 µs':>8}")
    for r in libraries:
        if "note" in r:
            print(f"{r['library']:36} {r['note']}")
        else:
            print(f"{r['library']:36} {r['p50_us']:8.2f} {r['p99_us']:8.2f}")
    out = Path(__file__).parent / "results" / "caveat_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "n": args.n, "checks": checks, "cel_libraries": libraries},
            indent=2,
        )
    )
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
