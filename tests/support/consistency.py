"""SpiceDB's consistency-suite idea, for any loaded service: every answer of LookupResources and
LookupSubjects must agree with Check over all (resource, subject) pairs, and Expand must run."""

from __future__ import annotations

from dataclasses import dataclass, field

from zanzi import errors
from zanzi.api.service import Service
from zanzi.model import Consistency, Permissionship, Relationship, SubjectRef

FULL = Consistency.fully_consistent()


@dataclass
class Universe:
    """What to ask about: resources per type, subjects, and names per type."""

    resources: dict[str, set[str]] = field(default_factory=dict)
    subjects: set[SubjectRef] = field(default_factory=set)
    names: dict[str, list[str]] = field(default_factory=dict)


def universe_from(
    service: Service, relationships: list[Relationship], extra_subjects: list[SubjectRef] = ()
) -> Universe:
    schema = service.schema(FULL)
    u = Universe()
    for d in schema.definitions.values():
        u.names[d.name] = [*d.relations, *d.permissions]
        u.resources.setdefault(d.name, set())
    for rel in relationships:
        u.resources.setdefault(rel.resource.type, set()).add(rel.resource.id)
        s = rel.subject
        if not s.is_wildcard:
            u.subjects.add(s)
            u.resources.setdefault(s.type, set()).add(s.id)
        else:
            u.subjects.add(SubjectRef(s.type, "someone_else"))
    u.subjects.update(extra_subjects)
    return u


def check_matrix(
    service: Service, u: Universe
) -> dict[tuple[str, str, str, SubjectRef], Permissionship | str]:
    answers: dict[tuple[str, str, str, SubjectRef], Permissionship | str] = {}
    for rtype, ids in u.resources.items():
        for rid in sorted(ids):
            for name in u.names.get(rtype, []):
                for s in sorted(u.subjects, key=str):
                    key = (rtype, rid, name, s)
                    try:
                        answers[key] = service.check(
                            f"{rtype}:{rid}", name, s, consistency=FULL
                        ).permissionship
                    except errors.MaxDepthExceeded:
                        answers[key] = "cycle"
    return answers


def assert_lookups_agree(service: Service, u: Universe) -> int:
    """Compare LookupResources and LookupSubjects with the check matrix; return comparisons."""
    answers = check_matrix(service, u)
    compared = 0
    for rtype, names in u.names.items():
        for name in names:
            for s in sorted(u.subjects, key=str):
                found = {
                    r.resource_id: r.permissionship
                    for r in service.lookup_resources(rtype, name, s, consistency=FULL)
                }
                for rid in sorted(u.resources.get(rtype, ())):
                    ans = answers[(rtype, rid, name, s)]
                    compared += 1
                    if ans == "cycle":  # check refused (cyclic data); nothing to compare
                        continue
                    got = found.get(rid, Permissionship.NO_PERMISSION)
                    assert got is ans, (
                        f"lookup_resources({rtype}#{name}, {s}) says {got.name} for {rid}, check {ans}"
                    )
    subject_kinds = {(s.type, s.relation) for s in u.subjects}
    for rtype, ids in u.resources.items():
        for rid in sorted(ids):
            for name in u.names.get(rtype, []):
                for stype, srel in sorted(subject_kinds, key=lambda k: (k[0], k[1] or "")):
                    results = list(
                        service.lookup_subjects(
                            f"{rtype}:{rid}", name, stype, subject_relation=srel, consistency=FULL
                        )
                    )
                    concrete = {r.subject.id: r.permissionship for r in results if r.subject.id != "*"}
                    wildcard = next((r for r in results if r.subject.id == "*"), None)
                    excluded = {e.subject.id: e.permissionship for e in wildcard.excluded} if wildcard else {}
                    for s in u.subjects:
                        if (s.type, s.relation) != (stype, srel):
                            continue
                        ans = answers[(rtype, rid, name, s)]
                        if ans == "cycle":
                            continue
                        compared += 1
                        via_lookup = _subject_permissionship(s.id, concrete, wildcard, excluded)
                        assert via_lookup is ans, (
                            f"lookup_subjects({rtype}:{rid}#{name}, {stype}) disagrees with check for {s}: "
                            f"check={ans.name}, lookup={via_lookup.name}, concrete={concrete}, "
                            f"wildcard={wildcard is not None}, excluded={excluded}"
                        )
                service.expand(f"{rtype}:{rid}", name, consistency=FULL)
    return compared


def _subject_permissionship(
    sid: str,
    concrete: dict[str, Permissionship],
    wildcard: object,
    excluded: dict[str, Permissionship],
) -> Permissionship:
    """What a LookupSubjects answer says about one subject, for comparison with Check."""
    has, no, cond = (
        Permissionship.HAS_PERMISSION,
        Permissionship.NO_PERMISSION,
        Permissionship.CONDITIONAL_PERMISSION,
    )
    direct = concrete.get(sid, no)
    if direct is has:
        return has
    via_wildcard = no
    if wildcard is not None:
        w = wildcard.permissionship  # type: ignore[attr-defined]
        ex = excluded.get(sid, no)
        if ex is has:
            via_wildcard = no
        elif ex is cond:
            via_wildcard = cond
        else:
            via_wildcard = w
    if via_wildcard is has:
        return has
    if cond in (direct, via_wildcard):
        return cond
    return no
