"""Expand: the userset tree of ``resource#relation`` (Zanzibar paper section 2.4.5).

A relation expands to a leaf of its stored subjects. A permission expands along its rewrite:
unions, intersections and exclusions become nodes, a reference to another relation becomes that
relation's subtree, and an arrow becomes a union (``.all()``: an intersection) of the subtrees
of the computed relation on every object the tupleset points to.

With ``recursive=True`` every userset subject is expanded in turn (what validation files need);
a userset already being expanded higher up is not expanded again, so cyclic data terminates.
"""

from __future__ import annotations

from dataclasses import replace

from zanzi.engine.check import DEFAULT_MAX_DEPTH
from zanzi.engine.reader import RelationshipReader
from zanzi.engine.typesystem import TypeSystem
from zanzi.errors import MaxDepthExceeded
from zanzi.model import ExpandSubject, ExpandTree, ObjectRef, Relationship, SetOperation, SubjectRef
from zanzi.schema import ir
from zanzi.store.base import RelationshipQuery

__all__ = ["ExpandRun"]


class ExpandRun:
    """Builds expand trees at one snapshot."""

    def __init__(
        self,
        ts: TypeSystem,
        reader: RelationshipReader,
        *,
        recursive: bool = False,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.ts = ts
        self.reader = reader
        self.recursive = recursive
        self.max_depth = max_depth
        self._active: set[tuple[str, str, str]] = set()

    def expand(self, resource_type: str, resource_id: str, relation: str) -> ExpandTree:
        return self._expand(resource_type, resource_id, relation, 1)

    def _expand(self, t: str, i: str, r: str, depth: int) -> ExpandTree:
        if depth > self.max_depth:
            raise MaxDepthExceeded(
                f"the expand request has exceeded the allowable maximum depth of {self.max_depth} "
                f"at {t}:{i}#{r}",
                max_depth=self.max_depth,
            )
        key = (t, i, r)
        resource = ObjectRef(t, i)
        if key in self._active:
            return ExpandTree(resource, r, SetOperation.LEAF)
        self._active.add(key)
        try:
            member = self.ts.member(t, r)
            if isinstance(member, ir.Relation):
                return self._relation(resource, r, depth)
            tree = self._rewrite(member.rewrite, resource, r, depth)
            if not isinstance(member.rewrite, ir.Union | ir.Intersection | ir.Exclusion):
                # As SpiceDB: a permission's rewrite is always a set operation, so a single
                # expression (`view = viewer`, an arrow, nil) is a union of one.
                tree = ExpandTree(resource, r, SetOperation.UNION, children=(tree,))
            return tree
        finally:
            self._active.discard(key)

    def _relation(self, resource: ObjectRef, r: str, depth: int) -> ExpandTree:
        rels = list(self.reader.query(RelationshipQuery(resource.type, (resource.id,), None, r)))
        rels.sort(key=lambda rel: (rel.subject.type, rel.subject.id, rel.subject.relation or ""))
        leaf = ExpandTree(
            resource,
            r,
            SetOperation.LEAF,
            subjects=tuple(ExpandSubject(rel.subject, rel.caveat, rel.expiration) for rel in rels),
        )
        if not self.recursive:
            return leaf
        nested = []
        for rel in rels:
            sub = rel.subject
            if sub.relation is None or not self.ts.has(sub.type, sub.relation):
                continue
            subtree = self._expand(sub.type, sub.id, sub.relation, depth + 1)
            if rel.caveat is not None:
                subtree = _with_caveat(subtree, rel)
            nested.append(subtree)
        if not nested:
            return leaf
        return ExpandTree(resource, r, SetOperation.UNION, children=(leaf, *nested))

    def _rewrite(self, node: ir.Rewrite, resource: ObjectRef, r: str, depth: int) -> ExpandTree:
        if isinstance(node, ir.ComputedUserset):
            if not self.ts.has(resource.type, node.relation):
                return ExpandTree(resource, node.relation, SetOperation.LEAF)
            return self._expand(resource.type, resource.id, node.relation, depth + 1)
        if isinstance(node, ir.Union | ir.Intersection):
            op = SetOperation.UNION if isinstance(node, ir.Union) else SetOperation.INTERSECTION
            children = tuple(self._rewrite(c, resource, r, depth) for c in node.children)
            return ExpandTree(resource, r, op, children=children)
        if isinstance(node, ir.Exclusion):
            children = (
                self._rewrite(node.base, resource, r, depth),
                self._rewrite(node.subtract, resource, r, depth),
            )
            return ExpandTree(resource, r, SetOperation.EXCLUSION, children=children)
        if isinstance(node, ir.Arrow):
            rels = list(
                self.reader.query(RelationshipQuery(resource.type, (resource.id,), None, node.tupleset))
            )
            rels.sort(key=lambda rel: (rel.subject.type, rel.subject.id))
            children_list = []
            for rel in rels:
                sub = rel.subject
                if not self.ts.has(sub.type, node.computed):
                    continue
                subtree = self._expand(sub.type, sub.id, node.computed, depth + 1)
                children_list.append(_with_caveat(subtree, rel) if rel.caveat is not None else subtree)
            op = SetOperation.UNION if node.function == "any" else SetOperation.INTERSECTION
            return ExpandTree(resource, r, op, children=tuple(children_list))
        if isinstance(node, ir.Nil):
            return ExpandTree(resource, r, SetOperation.LEAF)
        if isinstance(node, ir.SelfRef):
            me = ExpandSubject(SubjectRef(resource.type, resource.id))
            return ExpandTree(resource, r, SetOperation.LEAF, subjects=(me,))
        raise TypeError(f"unknown rewrite node {node!r}")


def _with_caveat(tree: ExpandTree, rel: Relationship) -> ExpandTree:
    return replace(tree, caveat=rel.caveat)
