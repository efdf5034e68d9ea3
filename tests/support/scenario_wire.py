"""Running a SpiceDB validation file through a server, as a client would (see
``tests/integration/test_serve_scenarios.py``): schema, relationships, assertions one by one and
in bulk, expected relations, and lookups against checks for every (resource, subject) pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.wire import GrpcWire, HttpWire, Item, reset
from zanzi.api.validation import load_validation_file
from zanzi.api.validation.expected import parse_expected
from zanzi.model import Relationship, SubjectRef

WANT = {"assertTrue": "has", "assertFalse": "no", "assertCaveated": "conditional"}


def run_scenario(path: Path, wire: GrpcWire | HttpWire) -> None:
    """Everything the file says, through ``wire``; an AssertionError names the first difference."""
    vf = load_validation_file(path)
    assert vf.schema is not None and not vf.errors
    reset(wire, vf.schema)
    rels = [r for r, _ in vf.relationships]
    if rels:
        wire.write(rels)

    # assertions, one by one and in bulk
    items: list[Item] = [
        (str(a.relationship.resource), a.relationship.relation, str(a.relationship.subject), a.context)
        for a in vf.assertions
    ]
    wanted = [WANT[a.kind] for a in vf.assertions]
    one_by_one = [wire.check(item) for item in items]
    assert one_by_one == wanted, _diff(items, wanted, one_by_one)
    assert wire.check_bulk(items) == wanted

    # expected relations
    for key, (_, entries) in vf.expected.items():
        expected_relations(wire, key, [parse_expected(e.text) for e in entries])

    # lookups agree with check over every pair
    lookups_agree(wire, rels, vf)


def _diff(items: list[Item], wanted: list[str], got: list[str]) -> str:
    return "\n".join(
        f"{r}#{p}@{s} {c or ''}: wanted {w}, got {g}"
        for (r, p, s, c), w, g in zip(items, wanted, got, strict=True)
        if w != g
    )


def expected_relations(wire: GrpcWire | HttpWire, key: str, expected: list[Any]) -> None:
    resource, _, permission = key.partition("#")
    kinds: dict[tuple[str, str | None], dict[str, Any]] = {}
    for e in expected:
        kinds.setdefault((e.subject.type, e.subject.relation), {})[e.subject.id] = e
        if e.subject.is_wildcard:
            continue
        got = wire.check((resource, permission, str(e.subject), None))
        assert got == ("conditional" if e.caveated else "has"), f"{key}: {e.subject} is {got}"
    for (stype, srel), by_id in kinds.items():
        found = {
            sid: (perm, excluded)
            for sid, perm, excluded in wire.lookup_subjects(resource, permission, stype, srel or "")
        }
        assert set(found) == set(by_id), (
            f"{key} ({stype}#{srel}): lookup {sorted(found)}, expected {sorted(by_id)}"
        )
        for sid, e in by_id.items():
            perm, excluded = found[sid]
            assert perm == ("conditional" if e.caveated else "has"), f"{key}: {e.subject} looked up as {perm}"
            if e.subject.is_wildcard:
                assert set(excluded) == {x.id for x, _ in e.exclusions}, f"{key}: exclusions {excluded}"


def lookups_agree(wire: GrpcWire | HttpWire, rels: list[Relationship], vf: Any) -> None:
    names = _names(vf.schema)
    resources: dict[str, set[str]] = {t: set() for t in names}
    subjects: set[SubjectRef] = set()
    for r in rels:
        resources.setdefault(r.resource.type, set()).add(r.resource.id)
        s = r.subject
        if s.is_wildcard:
            subjects.add(SubjectRef(s.type, "someone_else"))
        else:
            subjects.add(s)
            resources.setdefault(s.type, set()).add(s.id)
    subjects.update(a.relationship.subject for a in vf.assertions)
    ordered = sorted(subjects, key=str)
    pairs: list[Item] = [
        (f"{t}:{rid}", name, str(s), None)
        for t, ids in resources.items()
        for rid in sorted(ids)
        for name in names.get(t, [])
        for s in ordered
    ]
    answers = dict(zip(pairs, wire.check_bulk(pairs), strict=True))
    for t, type_names in names.items():
        for name in type_names:
            for s in ordered:
                found = wire.lookup_resources(t, name, str(s))
                for rid in sorted(resources.get(t, ())):
                    ans = answers[(f"{t}:{rid}", name, str(s), None)]
                    if ans.startswith("error:"):  # check refused (cyclic data): nothing to compare
                        continue
                    assert found.get(rid, "no") == ans, (
                        f"lookup_resources({t}#{name}, {s}) on {rid}: {found}, check {ans}"
                    )
    kinds = sorted({(s.type, s.relation or "") for s in ordered})
    for t, ids in resources.items():
        for rid in sorted(ids):
            for name in names.get(t, []):
                for stype, srel in kinds:
                    results = wire.lookup_subjects(f"{t}:{rid}", name, stype, srel)
                    concrete = {sid: perm for sid, perm, _ in results if sid != "*"}
                    wildcard = next(((perm, ex) for sid, perm, ex in results if sid == "*"), None)
                    for s in ordered:
                        if (s.type, s.relation or "") != (stype, srel):
                            continue
                        ans = answers[(f"{t}:{rid}", name, str(s), None)]
                        if ans.startswith("error:"):
                            continue
                        got = _via_lookup(s.id, concrete, wildcard)
                        assert got == ans, (
                            f"lookup_subjects({t}:{rid}#{name}, {stype}) for {s}: {got}, check {ans}"
                        )


def _names(schema: str) -> dict[str, list[str]]:
    from zanzi.schema import compile_schema

    compiled = compile_schema(schema)
    return {d.name: [*d.relations, *d.permissions] for d in compiled.definitions.values()}


def _via_lookup(sid: str, concrete: dict[str, str], wildcard: tuple[str, dict[str, str]] | None) -> str:
    direct = concrete.get(sid, "no")
    if direct == "has":
        return "has"
    via = "no"
    if wildcard is not None:
        perm, excluded = wildcard
        ex = excluded.get(sid, "no")
        via = "no" if ex == "has" else ("conditional" if ex == "conditional" else perm)
    if via == "has":
        return "has"
    return "conditional" if "conditional" in (direct, via) else "no"
