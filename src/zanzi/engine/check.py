"""Check: is ``subject`` a member of ``resource#relation``, and under which condition?

One :class:`CheckRun` answers one question. It walks the rewrite tree of the permission and the
stored relationships depth first, short-circuiting unions at the first unconditional yes and
intersections at the first no. Sub-answers are memoised per run.

Cycle safety: a sub-problem that is re-entered while it is still being computed (cyclic data,
such as two groups that contain each other) counts as "no" on that branch, and answers that
depended on such an assumption are not memoised. If the final answer is not a plain yes and a
cycle was met, the run raises :class:`~zanzi.errors.MaxDepthExceeded`, as SpiceDB does when a
check recurses through cyclic data (``cycles_are_errors=False`` returns the cycle-free answer
instead, which lookups use). A chain deeper than the depth limit always raises it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zanzi.engine.conditions import Cond, all_of, both, either, negate
from zanzi.engine.reader import RelationshipReader, relationship_condition
from zanzi.engine.subjectset import SubjectSet
from zanzi.engine.typesystem import DirectPlan, TypeSystem
from zanzi.errors import InvalidArgument, MaxDepthExceeded
from zanzi.model import ELLIPSIS, Relationship, SubjectRef
from zanzi.schema import ir
from zanzi.store.base import RelationshipQuery

__all__ = ["DEFAULT_MAX_DEPTH", "CheckMemo", "CheckRun", "CheckStats"]

DEFAULT_MAX_DEPTH = 50
_NO_FLOOR = 1 << 30

Key = tuple[str, str, str]


@dataclass(slots=True)
class CheckStats:
    """What a run cost: sub-problems dispatched, memo hits, deepest level reached."""

    dispatches: int = 0
    memo_hits: int = 0
    depth: int = 0
    queries: int = 0


class CheckMemo:
    """Sub-answers for one subject at one revision, shareable between requests (Zanzibar's
    cache of sub-problems): valid as long as the revision, the subject and the clock-independent
    data are the same. Answers that depended on an unfinished cycle are never stored."""

    __slots__ = ("cyclic", "results")

    def __init__(self) -> None:
        self.results: dict[Key, Cond] = {}
        self.cyclic: set[Key] = set()

    def __len__(self) -> int:
        return len(self.results)


class CheckRun:
    """Answers ``check(resource#relation, subject)`` questions for one subject at one snapshot."""

    def __init__(
        self,
        ts: TypeSystem,
        reader: RelationshipReader,
        subject: SubjectRef,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        cycles_are_errors: bool = True,
        memo: CheckMemo | None = None,
        closures: Callable[[str, str, str, int], SubjectSet | None] | None = None,
    ) -> None:
        if subject.is_wildcard:
            raise InvalidArgument(
                "cannot perform check on wildcard subject",
                field="subject.object_id",
                reason="ERROR_REASON_WILDCARD_NOT_ALLOWED",
            )
        self.ts = ts
        self.reader = reader
        # The serving index's fast path (engine/index.py), when reading from it.
        self._shapes = getattr(reader, "shapes", None)
        self._live = getattr(reader, "live", None)
        self._kinds = ts.kinds
        # Recursive nodes (nested groups, folder chains) answered from a shared subject set:
        # depth-independent once computed (in the spirit of Zanzibar's Leopard index).
        self._closures = closures if closures is not None and ts.recursive else None
        self._recursive = ts.recursive
        self.subject = subject
        self.max_depth = max_depth
        self.cycles_are_errors = cycles_are_errors
        self.stats = CheckStats()
        shared = memo if memo is not None else CheckMemo()
        self._memo: dict[Key, Cond] = shared.results
        self._stack: dict[Key, int] = {}
        self._floor = _NO_FLOOR
        self._cycle: Key | None = None
        self._cyclic: set[Key] = shared.cyclic  # memoised keys whose computation met a cycle

    # -- entry point --------------------------------------------------------------------------

    def check(self, resource_type: str, resource_id: str, relation: str) -> Cond:
        """The condition under which the subject is a member of ``type:id#relation``."""
        self._cycle = None
        result = self._check(resource_type, resource_id, relation, 1)
        if result is not True and self._cycle is not None and self.cycles_are_errors:
            t, i, r = self._cycle
            raise MaxDepthExceeded(
                f"the check request has exceeded the allowable maximum depth of {self.max_depth}: "
                f"recursion through {t}:{i}#{r} -- this usually indicates a recursive or too deep "
                "data dependency",
                max_depth=self.max_depth,
            )
        return result

    # -- recursion ----------------------------------------------------------------------------

    def _check(self, t: str, i: str, r: str, depth: int) -> Cond:
        key = (t, i, r)
        memo = self._memo.get(key)
        if memo is not None:
            self.stats.memo_hits += 1
            if key in self._cyclic:
                self._cycle = key
            return memo
        s = self.subject
        if s.relation == r and s.id == i and s.type == t:
            return True
        if self._closures is not None and (t, r) in self._recursive and key not in self._stack:
            closure = self._closures(t, i, r, depth)
            if closure is not None:
                self.stats.memo_hits += 1
                answer = closure.member(s.id)
                self._memo[key] = answer
                return answer
        index = self._stack.get(key)
        if index is not None:
            self._cycle = key
            if index < self._floor:
                self._floor = index
            return False
        if depth > self.max_depth:
            raise MaxDepthExceeded(
                f"the check request has exceeded the allowable maximum depth of {self.max_depth}: "
                f"reached {t}:{i}#{r} -- this usually indicates a recursive or too deep data dependency",
                max_depth=self.max_depth,
            )
        self.stats.dispatches += 1
        if depth > self.stats.depth:
            self.stats.depth = depth
        my_index = len(self._stack)
        self._stack[key] = my_index
        cycle_before = self._cycle
        self._cycle = None
        saved_floor, self._floor = self._floor, _NO_FLOOR
        try:
            kinds = self._kinds
            if (t, r) not in kinds:
                self.ts.member(t, r)  # raises the precise unknown definition / relation error
            rewrite = kinds[(t, r)]
            if rewrite is None:
                result = self._direct(t, i, r, depth)
            else:
                result = self._rewrite(rewrite, t, i, depth, my_index)
        finally:
            del self._stack[key]
        floor = self._floor
        tainted = floor < my_index
        met_cycle = self._cycle
        if not tainted:
            self._memo[key] = result
            if met_cycle is not None:
                self._cyclic.add(key)
        self._cycle = met_cycle or cycle_before
        self._floor = min(saved_floor, floor) if tainted else saved_floor
        return result

    def _direct(self, t: str, i: str, r: str, depth: int) -> Cond:
        s = self.subject
        plan = self.ts.direct_plan(t, r, s.type, s.relation)
        if self._shapes is not None:
            return self._direct_indexed(t, i, r, depth, plan)
        result: Cond = False
        ids: list[str] = []
        if plan.subject:
            ids.append(s.id)
        if plan.wildcard:
            ids.append("*")
        if ids:
            self.stats.queries += 1
            q = RelationshipQuery(t, (i,), None, r, s.type, tuple(ids), None)
            for rel in self.reader.query(q):
                sub = rel.subject
                if sub.id == "*":
                    if sub.relation is not None:
                        continue
                elif sub.relation != s.relation:
                    continue
                result = either(result, relationship_condition(rel))
                if result is True:
                    return True
        for subject_type, subject_relation in plan.usersets:
            self.stats.queries += 1
            q = RelationshipQuery(t, (i,), None, r, subject_type, None, subject_relation)
            for rel in self.reader.query(q):
                sub = rel.subject
                if sub.relation is None:
                    continue
                inner = self._check(sub.type, sub.id, sub.relation, depth + 1)
                if inner is False:
                    continue
                result = either(result, both(relationship_condition(rel), inner))
                if result is True:
                    return True
        return result

    def _direct_indexed(self, t: str, i: str, r: str, depth: int, plan: DirectPlan) -> Cond:
        """:meth:`_direct` over the serving index: dictionary lookups, no queries."""
        assert self._shapes is not None and self._live is not None
        self.stats.queries += 1
        shapes = self._shapes(t, i, r)
        if not shapes:
            return False
        s, live = self.subject, self._live
        result: Cond = False
        if plan.subject:
            bucket = shapes.get((s.type, s.relation or ELLIPSIS))
            if bucket:
                rel = live(bucket.get(s.id))
                if rel is not None:
                    result = relationship_condition(rel)
                    if result is True:
                        return True
        if plan.wildcard:
            bucket = shapes.get((s.type, ELLIPSIS))
            if bucket:
                rel = live(bucket.get("*"))
                if rel is not None:
                    result = either(result, relationship_condition(rel))
                    if result is True:
                        return True
        for subject_type, subject_relation in plan.usersets:
            bucket = shapes.get((subject_type, subject_relation))
            if not bucket:
                continue
            for entry in list(bucket.values()):
                rel = live(entry)
                if rel is None:
                    continue
                inner = self._check(subject_type, rel.subject.id, subject_relation, depth + 1)
                if inner is False:
                    continue
                result = either(result, both(relationship_condition(rel), inner))
                if result is True:
                    return True
        return result

    def _tupleset(self, t: str, i: str, tupleset: str) -> list[Relationship]:
        self.stats.queries += 1
        if self._shapes is None:
            return list(self.reader.query(RelationshipQuery(t, (i,), None, tupleset)))
        assert self._live is not None
        shapes = self._shapes(t, i, tupleset)
        if not shapes:
            return []
        live = self._live
        out: list[Relationship] = []
        for bucket in list(shapes.values()):
            for entry in list(bucket.values()):
                rel = live(entry)
                if rel is not None:
                    out.append(rel)
        return out

    def _rewrite(self, node: ir.Rewrite, t: str, i: str, depth: int, index: int) -> Cond:
        if isinstance(node, ir.ComputedUserset):
            if (t, node.relation) not in self._kinds:
                return False
            return self._check(t, i, node.relation, depth + 1)
        if isinstance(node, ir.Union):
            result: Cond = False
            for child in node.children:
                result = either(result, self._rewrite(child, t, i, depth, index))
                if result is True:
                    return True
            return result
        if isinstance(node, ir.Intersection):
            result = True
            for child in node.children:
                result = both(result, self._rewrite(child, t, i, depth, index))
                if result is False:
                    return False
            return result
        if isinstance(node, ir.Exclusion):
            base = self._rewrite(node.base, t, i, depth, index)
            if base is False:
                return False
            saved = self._floor
            self._floor = _NO_FLOOR
            subtract = self._rewrite(node.subtract, t, i, depth, index)
            if self._floor < index:
                # The subtracted side assumed an unfinished ancestor to be "no"; negating that
                # assumption could grant access wrongly, so refuse as SpiceDB would (or, when
                # cycles are not errors, deny on this branch).
                if not self.cycles_are_errors:
                    self._floor = min(saved, self._floor)
                    return False
                raise MaxDepthExceeded(
                    f"the check request has exceeded the allowable maximum depth of {self.max_depth}: "
                    f"recursion through an exclusion on {t}:{i}",
                    max_depth=self.max_depth,
                )
            self._floor = min(saved, self._floor)
            return both(base, negate(subtract))
        if isinstance(node, ir.Arrow):
            return self._arrow(node, t, i, depth)
        if isinstance(node, ir.Nil):
            return False
        if isinstance(node, ir.SelfRef):
            s = self.subject
            return s.relation is None and s.type == t and s.id == i
        raise TypeError(f"unknown rewrite node {node!r}")

    def _arrow(self, node: ir.Arrow, t: str, i: str, depth: int) -> Cond:
        rels = self._tupleset(t, i, node.tupleset)
        kinds = self._kinds
        if node.function == "any":
            result: Cond = False
            for rel in rels:
                sub = rel.subject
                if (sub.type, node.computed) not in kinds:
                    continue
                inner = self._check(sub.type, sub.id, node.computed, depth + 1)
                if inner is False:
                    continue
                result = either(result, both(relationship_condition(rel), inner))
                if result is True:
                    return True
            return result
        # .all(): every subject of the tupleset must have it, and there must be one.
        conds: list[Cond] = []
        for rel in rels:
            sub = rel.subject
            if (sub.type, node.computed) not in kinds:
                return False
            inner = self._check(sub.type, sub.id, node.computed, depth + 1)
            if inner is False:
                return False
            conds.append(both(relationship_condition(rel), inner))
        if not conds:
            return False
        return all_of(conds)
