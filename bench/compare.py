"""Are the answers right? Each Zanzi mode against the SpiceDB engine and the reference evaluator;
and each figure as a ratio to the SpiceDB engine's.

A case is ``{"workload", "mode", "rows", "answers"}`` as a worker returns it. :func:`annotate`
fills each row's ``answers`` (``ok S150 R150``: 150 answers compared with SpiceDB's and 150
with the reference, all equal; ``DISAGREE S3/150``: 3 of 150 differ; ``S?5``: 5 probes the
SpiceDB engine did not answer, a timeout or an error of its own, so nothing to compare) and
``vs_spicedb``, and returns every disagreement found.
"""

from __future__ import annotations

from typing import Any

Case = dict[str, Any]


def op_key(row: dict[str, Any]) -> str | None:
    """The answers a row's operation produced."""
    if row["op"] in ("check", "lr", "ls") and row.get("clients", 1) == 1:
        return f"{row['op']}|{row['label']}"
    if row["op"] == "bulk":
        return "bulk|bulk check"
    return None


def same(ours: str, theirs: str, reference: bool = False) -> bool:
    """Equal answers. Two refusals agree (both engines hit a limit); a reference count is
    compared with a lookup's ``"<count> #<digest>"``."""
    if ours.startswith("error") and theirs.startswith("error"):
        return True
    if reference:
        return ours.split(" ", 1)[0] == theirs
    return ours == theirs


def diff(ours: dict[str, str], theirs: dict[str, str], reference: bool = False) -> tuple[int, list[str]]:
    """(how many keys both have, the keys where they differ)."""
    common = [k for k in ours if k in theirs]
    return len(common), [k for k in common if not same(ours[k], theirs[k], reference)]


def annotate(cases: list[Case]) -> list[dict[str, Any]]:
    spicedb = {c["workload"]: c for c in cases if c["mode"] == "spicedb" and "rows" in c}
    disagreements: list[dict[str, Any]] = []
    for case in cases:
        if "rows" not in case:
            continue
        peer = spicedb.get(case["workload"]) if case["mode"] != "spicedb" else None
        answers = case.get("answers", {})
        for row in case["rows"]:
            if peer is not None:
                row["vs_spicedb"] = _ratio(row, peer["rows"])
            key = op_key(row)
            if key is None or key not in answers:
                continue
            parts: list[str] = []
            bad = False
            against = [("S", "spicedb", peer["answers"].get(key) if peer else None, False)]
            against.append(("R", "reference", answers.get(f"ref|{key}"), True))
            for tag, name, theirs, is_ref in against:
                if not theirs:
                    continue
                ours = answers[key]
                unanswered: list[str] = []
                if name == "spicedb":
                    unanswered = _spicedb_errors(ours, theirs)
                elif case["mode"] == "spicedb":  # its own failures show as ERRORS, not as disagreement
                    unanswered = _spicedb_errors(theirs, ours)
                if unanswered:
                    parts.append(f"{tag}?{len(unanswered)}")
                    ours = {k: v for k, v in ours.items() if k not in unanswered}
                n, keys = diff(ours, theirs, is_ref)
                if not n:
                    continue
                if keys:
                    bad = True
                    parts.append(f"{tag}{len(keys)}/{n}")
                    disagreements.extend(
                        {
                            "workload": case["workload"],
                            "mode": case["mode"],
                            "op": key,
                            "against": name,
                            "probe": k,
                            "answer": ours[k],
                            "expected": theirs[k],
                        }
                        for k in keys[:5]
                    )
                else:
                    parts.append(f"{tag}{n}")
            stale = _stale(answers, key)
            if stale:
                parts.append(f"STALE {stale}")
            if row.get("answers"):
                continue
            if bad:
                row["answers"] = "DISAGREE " + " ".join(parts)
            else:
                row["answers"] = ("ok " + " ".join(parts)) if parts else "unchecked"
    return disagreements


def _spicedb_errors(zanzi: dict[str, str], spicedb: dict[str, str]) -> list[str]:
    """Probes the SpiceDB engine failed (a deadline, say) where Zanzi answered: not comparable."""
    failed = [k for k, v in spicedb.items() if v.startswith("error")]
    return [k for k in failed if not zanzi.get(k, "error").startswith("error")]


def _stale(answers: dict[str, dict[str, str]], key: str) -> int:
    """Answers at minimize_latency (the timed run) that differ from the same mode's
    fully_consistent ones: a snapshot older than the data just loaded."""
    seen = answers.get(key.replace("check|", "check-min|", 1)) if key.startswith("check|") else None
    if not seen:
        return 0
    return len(diff(seen, answers[key])[1])


def _ratio(row: dict[str, Any], peer_rows: list[dict[str, Any]]) -> float | None:
    for p in peer_rows:
        if (p["op"], p["label"], p.get("clients", 1)) == (row["op"], row["label"], row.get("clients", 1)):
            if row.get("ops_per_s") and p.get("ops_per_s"):
                return float(row["ops_per_s"]) / float(p["ops_per_s"])
    return None
