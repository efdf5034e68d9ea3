"""Expected relations (the ``validation:`` block): parse the expected subjects, compute the
subjects actually found from a recursive expand tree, and compare them.

An expected entry reads ``[subject] is <resource#relation>/<resource#relation>...`` where the
subject may be caveated (``user:tom[...]``) or a wildcard with exclusions
(``user:* - {user:a, user:b[...]}``). The ``<...>`` list names the relations under which the
subject was found directly (the leaves of the expand tree holding it), as SpiceDB reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from zanzi.errors import InvalidArgument
from zanzi.model import ExpandTree, SetOperation, SubjectRef

__all__ = ["ExpectedSubject", "FoundSet", "found_subjects", "parse_expected"]

_ENTRY_RE = re.compile(r"^\s*\[(?P<subject>.+)\]\s*(?:is\s+(?P<rels>.*))?$")
_REL_RE = re.compile(r"<([^>]+)>")


@dataclass(frozen=True, slots=True)
class ExpectedSubject:
    subject: SubjectRef
    caveated: bool
    exclusions: tuple[tuple[SubjectRef, bool], ...]
    relationships: tuple[str, ...]


def _parse_subject(text: str) -> tuple[SubjectRef, bool]:
    text = text.strip()
    caveated = text.endswith("[...]")
    if caveated:
        text = text[: -len("[...]")]
    return SubjectRef.parse(text), caveated


def parse_expected(text: str) -> ExpectedSubject:
    """Parse ``[user:tom] is <doc:1#viewer>`` (and the wildcard and caveat forms)."""
    m = _ENTRY_RE.match(text)
    if m is None:
        raise InvalidArgument(
            f"invalid expected subject `{text}`: expected `[subject] is <resource#relation>`"
        )
    subject_text = m["subject"]
    exclusions: list[tuple[SubjectRef, bool]] = []
    if " - " in subject_text:
        head, _, rest = subject_text.partition(" - ")
        rest = rest.strip()
        if not (rest.startswith("{") and rest.endswith("}")):
            raise InvalidArgument(f"invalid exclusions in `{text}`: expected `{{subject, ...}}`")
        for part in rest[1:-1].split(","):
            if part.strip():
                exclusions.append(_parse_subject(part))
        subject_text = head
    subject, caveated = _parse_subject(subject_text)
    rels = tuple(sorted(_REL_RE.findall(m["rels"] or "")))
    return ExpectedSubject(subject, caveated, tuple(exclusions), rels)


# -- found subjects ---------------------------------------------------------------------------

SubjectKey = tuple[str, str, str | None]  # type, id, relation


@dataclass(slots=True)
class Found:
    """A subject found in an expansion: where it was found, and whether only conditionally."""

    caveated: bool = False
    relationships: set[str] = field(default_factory=set)
    excluded: dict[SubjectKey, bool] = field(default_factory=dict)  # wildcards only: id -> caveated

    def copy(self) -> Found:
        return Found(self.caveated, set(self.relationships), dict(self.excluded))


class FoundSet:
    """The subjects of an expansion, keyed by ``(type, id, relation)``; ``id`` may be ``*``."""

    def __init__(self, items: dict[SubjectKey, Found] | None = None) -> None:
        self.items: dict[SubjectKey, Found] = items or {}

    def _wildcard(self, key: SubjectKey) -> Found | None:
        return self.items.get((key[0], "*", key[2]))

    def union(self, other: FoundSet) -> FoundSet:
        out = {k: v.copy() for k, v in self.items.items()}
        for k, v in other.items.items():
            mine = out.get(k)
            if mine is None:
                out[k] = v.copy()
                continue
            mine.relationships |= v.relationships
            mine.caveated = mine.caveated and v.caveated
            if k[1] == "*":
                # Excluded from the union only where excluded from both.
                mine.excluded = {
                    x: mine.excluded[x] or v.excluded[x] for x in mine.excluded.keys() & v.excluded.keys()
                }
        for k in list(out):
            if k[1] != "*":
                w = out.get((k[0], "*", k[2]))
                if w is not None:
                    w.excluded.pop(k, None)
        return FoundSet(out)

    def intersect(self, other: FoundSet) -> FoundSet:
        out: dict[SubjectKey, Found] = {}
        for k, v in self.items.items():
            match = other.items.get(k)
            if match is None and k[1] != "*":
                w = other._wildcard(k)
                if w is not None and k not in w.excluded:
                    match = w
            if match is None:
                continue
            f = v.copy()
            f.relationships |= match.relationships
            f.caveated = v.caveated or match.caveated
            if k[1] == "*":
                f.excluded = {**v.excluded, **match.excluded}
            out[k] = f
        for k, v in other.items.items():
            if k in out or k[1] == "*":
                continue
            w = self._wildcard(k)
            if w is not None and k not in w.excluded:
                f = v.copy()
                f.relationships |= w.relationships
                f.caveated = v.caveated or w.caveated
                out[k] = f
        return FoundSet(out)

    def exclude(self, other: FoundSet) -> FoundSet:
        out: dict[SubjectKey, Found] = {}
        for k, v in self.items.items():
            removed = other.items.get(k)
            w = other._wildcard(k) if k[1] != "*" else None
            if k[1] == "*":
                if removed is not None and not removed.caveated and not removed.excluded:
                    continue
                f = v.copy()
                for ok, ov in other.items.items():
                    if ok[0] == k[0] and ok[2] == k[2] and ok[1] != "*":
                        f.excluded[ok] = ov.caveated
                out[k] = f
                continue
            if removed is not None and not removed.caveated:
                continue
            if w is not None and k not in w.excluded and not w.caveated:
                continue
            f = v.copy()
            if removed is not None or w is not None:
                f.caveated = True
            out[k] = f
        return FoundSet(out)

    def mark_caveated(self) -> FoundSet:
        return FoundSet(
            {k: Found(True, set(v.relationships), dict(v.excluded)) for k, v in self.items.items()}
        )


def found_subjects(tree: ExpandTree) -> FoundSet:
    """The subjects of a (recursive) expansion, as SpiceDB's development membership set."""
    result = _found(tree)
    if tree.caveat is not None:
        result = result.mark_caveated()
    return result


def _found(tree: ExpandTree) -> FoundSet:
    where = f"{tree.resource}#{tree.relation}"
    if tree.operation is SetOperation.LEAF:
        items: dict[SubjectKey, Found] = {}
        for s in tree.subjects:
            key = (s.subject.type, s.subject.id, s.subject.relation)
            f = items.setdefault(key, Found(caveated=s.caveat is not None))
            f.relationships.add(where)
        return FoundSet(items)
    children = [found_subjects(child) for child in tree.children]
    if not children:
        return FoundSet()
    if tree.operation is SetOperation.UNION:
        acc = FoundSet()
        for c in children:
            acc = acc.union(c)
        return acc
    acc = children[0]
    for c in children[1:]:
        acc = acc.intersect(c) if tree.operation is SetOperation.INTERSECTION else acc.exclude(c)
    return acc
