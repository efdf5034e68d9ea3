"""Indexes over a compiled schema that the engine needs on its hot paths.

Built once per schema: which subject types each relation allows, and the *reverse* graph used
by lookup-resources -- for every ``(type, relation)`` the places in the schema where a member of
it becomes a member of something else, and whether that step is *certain* (a union-only path:
membership carries over unconditionally) or only a candidate that a check must confirm
(inside an intersection, the base of an exclusion, or an ``.all()`` arrow).
"""

from __future__ import annotations

from dataclasses import dataclass

from zanzi.errors import UnknownDefinition, UnknownRelation
from zanzi.schema import ir

__all__ = ["ArrowEdge", "ComputedEdge", "DirectPlan", "RelationEdge", "SelfEdge", "TypeSystem"]

#: ``(type, relation)``; relation ``None`` stands for the object itself.
NodeType = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class DirectPlan:
    """See :meth:`TypeSystem.direct_plan`."""

    subject: bool
    wildcard: bool
    usersets: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RelationEdge:
    """A relationship ``parent_type:p#relation@child`` makes ``child`` a member of
    ``parent_type:p#relation``. ``wildcard`` edges match the ``type:*`` subject instead."""

    parent_type: str
    relation: str
    wildcard: bool = False


@dataclass(frozen=True, slots=True)
class ComputedEdge:
    """Permission ``permission`` of the same object refers to the child relation."""

    permission: str
    certain: bool


@dataclass(frozen=True, slots=True)
class ArrowEdge:
    """Permission ``permission`` of ``parent_type`` walks ``tupleset`` to the child's object and
    asks for the child relation there."""

    parent_type: str
    tupleset: str
    permission: str
    certain: bool


@dataclass(frozen=True, slots=True)
class SelfEdge:
    """Permission ``permission`` of the object's own type contains ``self``."""

    permission: str
    certain: bool


Edge = RelationEdge | ComputedEdge | ArrowEdge | SelfEdge


class TypeSystem:
    """Read-only indexes over one :class:`~zanzi.schema.ir.Schema`."""

    def __init__(self, schema: ir.Schema) -> None:
        self.schema = schema
        self.definitions = schema.definitions
        # (type, relation) -> allowed subjects, for relations only
        self.allowed: dict[tuple[str, str], tuple[ir.AllowedSubject, ...]] = {}
        # (type, relation) -> subject relations usable as usersets ("group#member")
        self.userset_types: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self.reverse: dict[NodeType, list[Edge]] = {}
        #: (type, name) -> None for a relation, the rewrite of a permission (hot-path lookup)
        self.kinds: dict[tuple[str, str], ir.Rewrite | None] = {}
        self._plans: dict[tuple[str, str, str, str | None], DirectPlan] = {}
        for d in schema.definitions.values():
            for rel in d.relations.values():
                self.kinds[(d.name, rel.name)] = None
            for perm in d.permissions.values():
                self.kinds[(d.name, perm.name)] = perm.rewrite
        for d in schema.definitions.values():
            for rel in d.relations.values():
                self.allowed[(d.name, rel.name)] = rel.allowed
                self.userset_types[(d.name, rel.name)] = tuple(
                    dict.fromkeys((a.type, a.relation) for a in rel.allowed if a.relation is not None)
                )
        self._build_reverse()
        self.recursive: frozenset[tuple[str, str]] = frozenset(self._recursive_nodes())

    # -- lookups ------------------------------------------------------------------------------

    def definition(self, type_name: str) -> ir.Definition:
        d = self.definitions.get(type_name)
        if d is None:
            raise UnknownDefinition(f"object definition `{type_name}` not found", definition=type_name)
        return d

    def member(self, type_name: str, name: str) -> ir.Relation | ir.Permission:
        found = self.definition(type_name).get(name)
        if found is None:
            raise UnknownRelation(
                f"relation/permission `{name}` not found under definition `{type_name}`",
                definition=type_name,
                relation=name,
            )
        return found

    def has(self, type_name: str, name: str) -> bool:
        d = self.definitions.get(type_name)
        return d is not None and d.has(name)

    def is_relation(self, type_name: str, name: str) -> bool:
        return (type_name, name) in self.allowed

    def allows_wildcard(self, type_name: str, relation: str, subject_type: str) -> bool:
        return any(a.wildcard and a.type == subject_type for a in self.allowed.get((type_name, relation), ()))

    def allows_direct(
        self, type_name: str, relation: str, subject_type: str, subject_relation: str | None
    ) -> bool:
        return any(
            not a.wildcard and a.type == subject_type and a.relation == subject_relation
            for a in self.allowed.get((type_name, relation), ())
        )

    def direct_plan(
        self, type_name: str, relation: str, subject_type: str, subject_relation: str | None
    ) -> DirectPlan:
        """How a check of a subject on a relation reads it: whether the subject itself, or the
        wildcard of its type, may be stored there, and which usersets to follow."""
        key = (type_name, relation, subject_type, subject_relation)
        plan = self._plans.get(key)
        if plan is None:
            plan = DirectPlan(
                self.allows_direct(type_name, relation, subject_type, subject_relation),
                self.allows_wildcard(type_name, relation, subject_type),
                self.userset_types.get((type_name, relation), ()),
            )
            self._plans[key] = plan
        return plan

    def tupleset_subject_types(self, type_name: str, tupleset: str) -> tuple[str, ...]:
        """Object types that can appear as subjects of an arrow's tupleset relation."""
        return tuple(
            dict.fromkeys(a.type for a in self.allowed.get((type_name, tupleset), ()) if not a.wildcard)
        )

    def has_caveats(self, type_name: str, relation: str) -> bool:
        return any(a.caveat is not None for a in self.allowed.get((type_name, relation), ()))

    # -- recursion ----------------------------------------------------------------------------

    def _dependencies(self, type_name: str, name: str) -> list[tuple[str, str]]:
        """The (type, relation/permission) nodes that a node's members come from."""
        allowed = self.allowed.get((type_name, name))
        if allowed is not None:
            return [(a.type, a.relation) for a in allowed if a.relation is not None]
        rewrite = self.kinds.get((type_name, name))
        out: list[tuple[str, str]] = []
        if rewrite is None:
            return out
        for node in ir.walk(rewrite):
            if isinstance(node, ir.ComputedUserset):
                out.append((type_name, node.relation))
            elif isinstance(node, ir.Arrow):
                out.append((type_name, node.tupleset))
                for subject_type in self.tupleset_subject_types(type_name, node.tupleset):
                    if self.has(subject_type, node.computed):
                        out.append((subject_type, node.computed))
        return out

    def _recursive_nodes(self) -> set[tuple[str, str]]:
        """Nodes on a cycle of the dependency graph (nested groups, folder chains...): Tarjan's
        strongly connected components, iteratively."""
        nodes = list(self.kinds)
        graph = {n: [d for d in self._dependencies(*n) if d in self.kinds] for n in nodes}
        index: dict[tuple[str, str], int] = {}
        low: dict[tuple[str, str], int] = {}
        on_stack: set[tuple[str, str]] = set()
        stack: list[tuple[str, str]] = []
        out: set[tuple[str, str]] = set()
        counter = 0
        for root in nodes:
            if root in index:
                continue
            work: list[tuple[tuple[str, str], int]] = [(root, 0)]
            while work:
                node, child = work.pop()
                if child == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                succ = graph[node]
                if child < len(succ):
                    work.append((node, child + 1))
                    nxt = succ[child]
                    if nxt not in index:
                        work.append((nxt, 0))
                    elif nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                    continue
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        out.update(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
        return out

    # -- reverse graph ------------------------------------------------------------------------

    def _add(self, node: NodeType, edge: Edge) -> None:
        edges = self.reverse.setdefault(node, [])
        if edge not in edges:
            edges.append(edge)

    def _build_reverse(self) -> None:
        for d in self.definitions.values():
            for rel in d.relations.values():
                for a in rel.allowed:
                    if a.wildcard:
                        self._add((a.type, None), RelationEdge(d.name, rel.name, wildcard=True))
                    else:
                        self._add((a.type, a.relation), RelationEdge(d.name, rel.name))
            for perm in d.permissions.values():
                self._index_rewrite(d, perm.name, perm.rewrite, certain=True)

    def _index_rewrite(self, d: ir.Definition, perm: str, node: ir.Rewrite, *, certain: bool) -> None:
        if isinstance(node, ir.ComputedUserset):
            self._add((d.name, node.relation), ComputedEdge(perm, certain))
        elif isinstance(node, ir.SelfRef):
            self._add((d.name, None), SelfEdge(perm, certain))
        elif isinstance(node, ir.Arrow):
            sure = certain and node.function == "any"
            for subject_type in self.tupleset_subject_types(d.name, node.tupleset):
                self._add((subject_type, node.computed), ArrowEdge(d.name, node.tupleset, perm, sure))
        elif isinstance(node, ir.Union):
            for child in node.children:
                self._index_rewrite(d, perm, child, certain=certain)
        elif isinstance(node, ir.Intersection):
            for child in node.children:
                self._index_rewrite(d, perm, child, certain=False)
        elif isinstance(node, ir.Exclusion):
            # Only the base can contribute members; the subtracted side never adds any.
            self._index_rewrite(d, perm, node.base, certain=False)
