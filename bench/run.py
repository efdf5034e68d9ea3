"""Runs the cases of a benchmark, each in a fresh worker process, within RAM and time guards."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import spicedb
from bench.plan import RAM_PER_REL, SKIP, plan_for
from bench.timing import mem_available_bytes
from bench.workloads import approx_count

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    workloads: list[str]
    modes: list[str]
    seed: int = 42
    quick: bool = False
    time_limit_s: float = 45 * 60
    cases: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.time_limit_s - (time.monotonic() - self.started)

    def skip_reason(self, workload: str, mode: str) -> str | None:
        if (workload, mode) in SKIP:
            return SKIP[(workload, mode)]
        if mode == "spicedb" and (why := spicedb.unavailable()):
            return f"SpiceDB engine unavailable: {why}"
        need = approx_count(workload) * RAM_PER_REL[mode]
        have = mem_available_bytes()
        if have and need > 0.8 * have:
            return f"needs about {need / 2**30:.1f} GB of RAM, {have / 2**30:.1f} GB available"
        if self.remaining() < 30:
            return "time limit reached"
        return None

    def execute(self, progress: Any = print) -> None:
        for workload in self.workloads:
            for mode in self.modes:
                why = self.skip_reason(workload, mode)
                if why:
                    self.skipped.append({"workload": workload, "mode": mode, "reason": why})
                    progress(f"  {workload:10} {mode:8} skipped: {why}")
                    continue
                t0 = time.monotonic()
                case = self.run_case(workload, mode)
                self.cases.append(case)
                state = f"{len(case.get('rows', []))} rows"
                if "error" in case:
                    state += f", FAILED: {case['error'][:300]}"
                progress(f"  {workload:10} {mode:8} {time.monotonic() - t0:6.1f} s  {state}")

    def run_case(self, workload: str, mode: str) -> dict[str, Any]:
        plan = plan_for(workload, mode, self.quick)
        timeout = max(30.0, min(plan.timeout_s, self.remaining()))
        base = {"workload": workload, "seed": self.seed, "mode": mode, "plan": plan.to_json()}
        with tempfile.TemporaryDirectory(prefix="zanzi-bench-") as tmp:
            if mode != "sqlite":
                return self._worker({**base, "phase": "all"}, Path(tmp), timeout)
            db = str(Path(tmp) / "bench.db")
            loaded = self._worker({**base, "phase": "load", "db": db}, Path(tmp), timeout)
            if "error" in loaded:
                return loaded
            served = self._worker(
                {**base, "phase": "serve", "db": db}, Path(tmp), max(30.0, self.remaining())
            )
            served["rows"] = loaded["rows"] + served.get("rows", [])
            return served

    def _worker(self, spec: dict[str, Any], tmp: Path, timeout: float) -> dict[str, Any]:
        out = tmp / f"{spec['phase']}.json"
        spec_path = tmp / f"{spec['phase']}-spec.json"
        spec_path.write_text(json.dumps({**spec, "out": str(out)}))
        log = tmp / f"{spec['phase']}.log"
        case = {"workload": spec["workload"], "mode": spec["mode"]}
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        with log.open("wb") as err:
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.worker", str(spec_path)],
                    cwd=REPO,
                    env=env,
                    stdout=err,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                partial = json.loads(out.read_text()) if out.exists() else {}
                doing = partial.pop("doing", spec["phase"])
                return {**case, **partial, "error": f"timed out after {timeout:.0f} s, during {doing}"}
        if not out.exists():
            tail = log.read_text(errors="replace")[-1500:]
            return {**case, "error": f"worker exited with {proc.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return {**case, **result}


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "mem_available_gb": round(mem_available_bytes() / 2**30, 1),
        "loadavg_start": os.getloadavg(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_changes": git("status", "--porcelain", "--", "src"),
    }
