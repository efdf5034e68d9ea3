"""LookupResources: every resource of one type on which a subject has a permission.

It walks the schema's *reverse* graph (see :mod:`zanzi.engine.typesystem`) outward from the
subject, a whole frontier at a time with one batched query per edge, in two phases:

1. **certain** -- only along union-only steps over uncaveated relationships. Every resource
   reached this way is a member; no check is needed.
2. **candidates** -- along every other step that can add members (an intersection branch,
   the base of an exclusion, an ``.all()`` arrow, a caveated relationship). Resources of the
   wanted type reached only this way are confirmed one by one with a check, which decides
   intersections, exclusions and caveats exactly.

The walk never follows the subtracted side of an exclusion, so the candidate set is a superset
of the answer and the check makes it exact. Visited sets make cyclic data safe.
"""

from __future__ import annotations

from collections import defaultdict

from zanzi.engine.check import DEFAULT_MAX_DEPTH, CheckRun
from zanzi.engine.conditions import Cond
from zanzi.engine.reader import RelationshipReader
from zanzi.engine.typesystem import (
    ArrowEdge,
    ComputedEdge,
    Edge,
    NodeType,
    RelationEdge,
    SelfEdge,
    TypeSystem,
)
from zanzi.model import ELLIPSIS, SubjectRef
from zanzi.store.base import RelationshipQuery

__all__ = ["LookupResourcesRun"]

_BATCH = 500


class LookupResourcesRun:
    """Finds resources for one subject at one snapshot."""

    def __init__(
        self,
        ts: TypeSystem,
        reader: RelationshipReader,
        subject: SubjectRef,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.ts = ts
        self.reader = reader
        self.subject = subject
        self.max_depth = max_depth
        self.queries = 0
        self.checks = 0
        self._checker: CheckRun | None = None

    def lookup(self, resource_type: str, permission: str) -> dict[str, Cond]:
        """Resource id -> the condition under which the subject has ``permission`` on it."""
        target: NodeType = (resource_type, permission)
        s = self.subject
        start: NodeType = (s.type, s.relation)
        certain: dict[NodeType, set[str]] = defaultdict(set)
        certain[start].add(s.id)
        maybe: dict[NodeType, set[str]] = defaultdict(set)
        maybe_frontier: dict[NodeType, set[str]] = defaultdict(set)

        # Phase 1: certain closure.
        frontier: dict[NodeType, set[str]] = {start: {s.id}}
        while frontier:
            nxt: dict[NodeType, set[str]] = defaultdict(set)
            for node, ids in frontier.items():
                for edge in self.ts.reverse.get(node, ()):
                    sure_edge = not isinstance(edge, ComputedEdge | ArrowEdge | SelfEdge) or edge.certain
                    for parent, pid, sure_rel in self._follow(node, ids, edge):
                        if sure_edge and sure_rel:
                            if pid not in certain[parent]:
                                certain[parent].add(pid)
                                nxt[parent].add(pid)
                        else:
                            maybe_frontier[parent].add(pid)
            frontier = nxt

        # Phase 2: candidates, from what phase 1 could not take for certain.
        frontier = {}
        for node, ids in maybe_frontier.items():
            fresh = ids - certain.get(node, set())
            if fresh:
                maybe[node] |= fresh
                frontier[node] = fresh
        while frontier:
            nxt = defaultdict(set)
            for node, ids in frontier.items():
                for edge in self.ts.reverse.get(node, ()):
                    for parent, pid, _ in self._follow(node, ids, edge):
                        if pid in certain.get(parent, ()) or pid in maybe[parent]:
                            continue
                        maybe[parent].add(pid)
                        nxt[parent].add(pid)
            frontier = nxt

        found: dict[str, Cond] = dict.fromkeys(certain.get(target, ()), True)
        candidates = sorted(maybe.get(target, set()) - found.keys())
        if candidates:
            checker = self._checker or CheckRun(
                self.ts, self.reader, s, max_depth=self.max_depth, cycles_are_errors=False
            )
            self._checker = checker
            for rid in candidates:
                self.checks += 1
                cond = checker.check(resource_type, rid, permission)
                if cond is not False:
                    found[rid] = cond
        return found

    def _follow(self, node: NodeType, ids: set[str], edge: Edge) -> list[tuple[NodeType, str, bool]]:
        """Parents reached from ``ids`` of ``node`` over ``edge``: (node type, id, uncaveated)."""
        node_type, node_rel = node
        if isinstance(edge, ComputedEdge):
            return [((node_type, edge.permission), i, True) for i in ids]
        if isinstance(edge, SelfEdge):
            if node_rel is not None:
                return []
            return [((node_type, edge.permission), i, True) for i in ids]
        out: list[tuple[NodeType, str, bool]] = []
        if isinstance(edge, RelationEdge):
            parent: NodeType = (edge.parent_type, edge.relation)
            if edge.wildcard:
                if node_rel is not None:
                    return []
                q_ids: tuple[str, ...] = ("*",)
                batches = [q_ids]
            else:
                batches = _batches(ids)
            for batch in batches:
                q = RelationshipQuery(
                    edge.parent_type, None, None, edge.relation, node_type, batch, node_rel or ELLIPSIS
                )
                self.queries += 1
                for rel in self.reader.query(q):
                    out.append((parent, rel.resource.id, rel.caveat is None))
            return out
        assert isinstance(edge, ArrowEdge)
        parent = (edge.parent_type, edge.permission)
        for batch in _batches(ids):
            q = RelationshipQuery(edge.parent_type, None, None, edge.tupleset, node_type, batch, None)
            self.queries += 1
            for rel in self.reader.query(q):
                out.append((parent, rel.resource.id, rel.caveat is None))
        return out


def _batches(ids: set[str]) -> list[tuple[str, ...]]:
    ordered = sorted(ids)
    return [tuple(ordered[k : k + _BATCH]) for k in range(0, len(ordered), _BATCH)]
