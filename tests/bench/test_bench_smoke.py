"""The bench machinery on a tiny workload, in-process, so that it cannot rot silently.

No timing is asserted: only that each mode produces rows with the expected keys, that answers
are compared (with the reference evaluator, and with the SpiceDB engine when it is installed),
and that a planted disagreement is flagged.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import compare, ops, plan, plot, report, spicedb, worker

TINY = replace(
    plan.QUICK,
    check_pool=60,
    check_budget_s=0.1,
    verify_n=30,
    min_verify=10,
    thread_clients=2,
    thread_budget_s=0.1,
    bulk_batches=1,
    bulk_budget_s=0.05,
    lookup_repeats=1,
    lookup_budget_s=0.05,
    write_reps=3,
    write_budget_s=0.05,
)
OPS = {"load", "check", "bulk", "lr", "ls", "write+check"}


def case(mode: str, **extra: Any) -> dict[str, Any]:
    spec = {"workload": "tiny", "seed": 7, "mode": mode, "plan": TINY.to_json(), **extra}
    return {"workload": "tiny", "mode": mode, **worker.run(spec)}


@pytest.fixture(scope="module")
def memory() -> dict[str, Any]:
    return case("memory")


def _row(c: dict[str, Any], op: str, label: str | None = None) -> dict[str, Any]:
    return next(r for r in c["rows"] if r["op"] == op and (label is None or r["label"] == label))


def test_rows_have_the_expected_keys_and_every_operation(memory: dict[str, Any]) -> None:
    assert {r["op"] for r in memory["rows"]} >= OPS
    for r in memory["rows"]:
        assert tuple(r) == ops.ROW_KEYS
        assert r["workload"] == "tiny" and r["mode"] == "memory"
    check = _row(memory, "check")
    assert check["n"] >= TINY.min_verify and check["p50_us"] > 0 and 0 < check["allowed_frac"] < 1
    assert _row(memory, "load")["n"] > 0 and _row(memory, "load")["bytes_per_rel"] is not None
    assert _row(memory, "write+check")["answers"] == "ok"


def test_answers_agree_with_the_reference(memory: dict[str, Any]) -> None:
    mine = copy.deepcopy(memory)
    assert compare.annotate([mine]) == []
    assert _row(mine, "check")["answers"].startswith("ok R")
    assert _row(mine, "bulk")["answers"].startswith("ok R")
    assert all(r["answers"].startswith("ok R") for r in mine["rows"] if r["op"] in ("lr", "ls"))


def test_a_planted_disagreement_is_flagged(memory: dict[str, Any]) -> None:
    ours = copy.deepcopy(memory)
    theirs = copy.deepcopy(memory) | {"mode": "spicedb"}
    theirs["rows"] = copy.deepcopy(memory["rows"])
    probe = next(iter(theirs["answers"]["check|check"]))
    flipped = "no" if theirs["answers"]["check|check"][probe] == "has" else "has"
    theirs["answers"]["check|check"][probe] = flipped
    lr = next(k for k in theirs["answers"] if k.startswith("lr|"))
    theirs["answers"][lr] = {k: "0 #000000000000" for k in theirs["answers"][lr]}

    found = compare.annotate([ours, theirs])

    ours_found = [d for d in found if d["mode"] == "memory"]
    assert {(d["op"], d["against"]) for d in ours_found} == {("check|check", "spicedb"), (lr, "spicedb")}
    assert next(d for d in ours_found if d["op"] == "check|check")["probe"] == probe
    # the planted answers are also wrong by the reference evaluator, and are flagged there too
    assert {(d["op"], d["against"]) for d in found if d["mode"] == "spicedb"} == {
        ("check|check", "reference"),
        (lr, "reference"),
    }
    assert _row(ours, "check")["answers"].startswith("DISAGREE S1/")
    assert _row(ours, "check")["vs_spicedb"] == pytest.approx(1.0)
    assert "DISAGREE" in report.table(ours["rows"])


def test_a_spicedb_timeout_is_unanswered_not_a_disagreement(memory: dict[str, Any]) -> None:
    ours = copy.deepcopy(memory)
    theirs = copy.deepcopy(memory) | {"mode": "spicedb"}
    theirs["rows"] = copy.deepcopy(memory["rows"])
    deadline = "error: rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    theirs["answers"]["bulk|bulk check"] = {k: deadline for k in theirs["answers"]["bulk|bulk check"]}
    n = len(theirs["answers"]["bulk|bulk check"])

    assert compare.annotate([ours, theirs]) == []
    assert _row(ours, "bulk")["answers"] == f"ok S?{n} R{n}"
    assert _row(theirs, "bulk")["answers"].startswith(f"ok R?{n}")
    # while a wrong answer beside a timeout is still caught
    probe = next(iter(ours["answers"]["check|check"]))
    theirs["answers"]["check|check"][probe] = deadline
    ours["answers"]["check|check"][next(k for k in ours["answers"]["check|check"] if k != probe)] = "maybe"
    found = [(d["op"], d["against"]) for d in compare.annotate([ours, theirs]) if d["mode"] == "memory"]
    assert found == [("check|check", "spicedb"), ("check|check", "reference")]


def test_a_wrong_reference_count_is_flagged(memory: dict[str, Any]) -> None:
    ours = copy.deepcopy(memory)
    ref = next(k for k in ours["answers"] if k.startswith("ref|ls|"))
    ours["answers"][ref] = {k: str(int(v) + 1) for k, v in ours["answers"][ref].items()}
    found = compare.annotate([ours])
    assert [d["against"] for d in found] == ["reference"]


def test_sqlite_load_then_serve(tmp_path: Path) -> None:
    db = str(tmp_path / "tiny.db")
    loaded = case("sqlite", phase="load", db=db)
    served = case("sqlite", phase="serve", db=db)
    assert [r["op"] for r in loaded["rows"]] == ["load"]
    assert {r["op"] for r in served["rows"]} >= (OPS - {"load"}) | {"open"}
    assert compare.annotate([served]) == []


def test_server_mode_with_two_clients() -> None:
    served = case("server")
    assert {(r["op"], r["clients"]) for r in served["rows"]} >= {("check", 1), ("check", 2)}
    assert compare.annotate([served]) == []


def test_report_targets_and_plot(memory: dict[str, Any], tmp_path: Path) -> None:
    rows = copy.deepcopy(memory["rows"])
    for r in rows:
        r["workload"] = "docs"
    items = report.targets(rows)
    assert {t["status"] for t in items} <= {"met", "MISSED", "not measured"}
    assert any(t["status"] != "not measured" for t in items)
    assert "target" in report.targets_table(items)
    why = plot.plot(rows, tmp_path / "plot.png")
    assert why is not None or (tmp_path / "plot.png").stat().st_size > 0


@pytest.mark.peer
def test_spicedb_engine_agrees(memory: dict[str, Any]) -> None:
    reason = spicedb.unavailable()
    if reason:
        pytest.skip(reason)
    peer = case("spicedb")
    ours = copy.deepcopy(memory)
    found = compare.annotate([ours, peer])
    assert found == []
    assert _row(ours, "check")["answers"].startswith("ok S")
    assert _row(ours, "check")["vs_spicedb"] is not None
