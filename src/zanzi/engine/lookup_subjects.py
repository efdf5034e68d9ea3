"""LookupSubjects: every subject of one type (and optional relation) that has a permission on one
resource, with wildcards and the subjects they exclude.

The rewrite tree is evaluated bottom-up as set algebra over :class:`SubjectSet`. Cyclic data is
safe: a sub-problem re-entered while being computed contributes nothing on that branch, which
is the least fixed point for unions; results that relied on that are not memoised.
"""

from __future__ import annotations

from zanzi.engine.check import DEFAULT_MAX_DEPTH
from zanzi.engine.reader import RelationshipReader, relationship_condition
from zanzi.engine.subjectset import SubjectSet
from zanzi.engine.typesystem import TypeSystem
from zanzi.errors import MaxDepthExceeded
from zanzi.schema import ir
from zanzi.store.base import RelationshipQuery

__all__ = ["LookupMemo", "LookupSubjectsRun"]

_NO_FLOOR = 1 << 30
Key = tuple[str, str, str]


class LookupMemo:
    """Subject sets of one subject type at one revision, shareable between requests.
    ``cyclic`` names the keys whose computation met cyclic data (a check must not take its
    answer from them: SpiceDB reports such checks as too deep)."""

    __slots__ = ("cyclic", "results", "size")

    def __init__(self) -> None:
        self.results: dict[Key, SubjectSet] = {}
        self.cyclic: set[Key] = set()
        self.size = 0  # subjects held, roughly: bounds the memory a cache spends on it


class LookupSubjectsRun:
    """Finds the subjects of type ``subject_type`` (``#subject_relation``) of resources."""

    def __init__(
        self,
        ts: TypeSystem,
        reader: RelationshipReader,
        subject_type: str,
        subject_relation: str | None = None,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        memo: LookupMemo | None = None,
    ) -> None:
        self.ts = ts
        self.reader = reader
        self.subject_type = subject_type
        self.subject_relation = subject_relation
        self.max_depth = max_depth
        self._shared = memo if memo is not None else LookupMemo()
        self._memo: dict[Key, SubjectSet] = self._shared.results
        self._cycle = False
        self._stack: dict[Key, int] = {}
        self._floor = _NO_FLOOR
        self.dispatches = 0

    def lookup(self, resource_type: str, resource_id: str, relation: str) -> SubjectSet:
        """The subjects of ``resource_type:resource_id#relation``. Do not mutate the result."""
        return self._lookup(resource_type, resource_id, relation, 1)

    def _lookup(self, t: str, i: str, r: str, depth: int) -> SubjectSet:
        key = (t, i, r)
        memo = self._memo.get(key)
        if memo is not None:
            if key in self._shared.cyclic:
                self._cycle = True
            return memo
        index = self._stack.get(key)
        if index is not None:
            self._floor = min(self._floor, index)
            self._cycle = True
            return SubjectSet()
        if depth > self.max_depth:
            raise MaxDepthExceeded(
                f"the lookup request has exceeded the allowable maximum depth of {self.max_depth} "
                f"at {t}:{i}#{r}",
                max_depth=self.max_depth,
            )
        self.dispatches += 1
        my_index = len(self._stack)
        self._stack[key] = my_index
        saved, self._floor = self._floor, _NO_FLOOR
        cycle_before, self._cycle = self._cycle, False
        try:
            member = self.ts.member(t, r)
            if isinstance(member, ir.Relation):
                result = self._direct(t, i, r, depth)
            else:
                result = self._rewrite(member.rewrite, t, i, depth)
            if t == self.subject_type and r == self.subject_relation:
                result = result.copy()
                result.add(i)
        finally:
            del self._stack[key]
        tainted = self._floor < my_index
        if not tainted:
            self._memo[key] = result
            self._shared.size += len(result.concrete) + len(result.excluded) + 1
            if self._cycle:
                self._shared.cyclic.add(key)
        self._cycle = self._cycle or cycle_before
        self._floor = min(saved, self._floor) if tainted else saved
        return result

    def _direct(self, t: str, i: str, r: str, depth: int) -> SubjectSet:
        out = SubjectSet()
        for rel in self.reader.query(RelationshipQuery(t, (i,), None, r)):
            sub = rel.subject
            cond = relationship_condition(rel)
            if sub.type == self.subject_type and sub.relation == self.subject_relation:
                out.add(sub.id, cond)
            if sub.relation is not None:
                inner = self._lookup(sub.type, sub.id, sub.relation, depth + 1)
                if not inner.is_empty():
                    out.update(inner.with_condition(cond))
        return out

    def _rewrite(self, node: ir.Rewrite, t: str, i: str, depth: int) -> SubjectSet:
        if isinstance(node, ir.ComputedUserset):
            if not self.ts.has(t, node.relation):
                return SubjectSet()
            return self._lookup(t, i, node.relation, depth + 1)
        if isinstance(node, ir.Union):
            return SubjectSet.union_all(self._rewrite(c, t, i, depth) for c in node.children)
        if isinstance(node, ir.Intersection):
            acc = self._rewrite(node.children[0], t, i, depth)
            for child in node.children[1:]:
                if acc.is_empty():
                    break
                acc = acc.intersect(self._rewrite(child, t, i, depth))
            return acc
        if isinstance(node, ir.Exclusion):
            base = self._rewrite(node.base, t, i, depth)
            if base.is_empty():
                return base
            return base.subtract(self._rewrite(node.subtract, t, i, depth))
        if isinstance(node, ir.Arrow):
            return self._arrow(node, t, i, depth)
        if isinstance(node, ir.Nil):
            return SubjectSet()
        if isinstance(node, ir.SelfRef):
            out = SubjectSet()
            if t == self.subject_type and self.subject_relation is None:
                out.add(i)
            return out
        raise TypeError(f"unknown rewrite node {node!r}")

    def _arrow(self, node: ir.Arrow, t: str, i: str, depth: int) -> SubjectSet:
        rels = list(self.reader.query(RelationshipQuery(t, (i,), None, node.tupleset)))
        parts: list[SubjectSet] = []
        for rel in rels:
            sub = rel.subject
            if not self.ts.has(sub.type, node.computed):
                if node.function == "all":
                    return SubjectSet()
                continue
            inner = self._lookup(sub.type, sub.id, node.computed, depth + 1)
            parts.append(inner.with_condition(relationship_condition(rel)))
        if node.function == "any":
            return SubjectSet.union_all(parts)
        if not parts:
            return SubjectSet()
        acc = parts[0]
        for part in parts[1:]:
            acc = acc.intersect(part)
        return acc
