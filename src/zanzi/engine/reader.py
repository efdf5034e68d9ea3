"""The narrow read protocol the engine needs from a store snapshot, and small helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from zanzi.engine.conditions import CaveatCall, Cond
from zanzi.model import Relationship
from zanzi.store.base import RelationshipKey, RelationshipQuery

__all__ = ["RelationshipReader", "relationship_condition"]


class RelationshipReader(Protocol):
    """What the engine reads: relationships matching a query, at one snapshot."""

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]: ...


def relationship_condition(rel: Relationship) -> Cond:
    """``True`` for a plain relationship, a :class:`CaveatCall` for a caveated one."""
    if rel.caveat is None:
        return True
    return CaveatCall.of(rel.caveat.name, rel.caveat.context)
