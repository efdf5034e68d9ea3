"""The compiled schema: definitions of relations (with allowed subject types) and permissions
(with userset-rewrite trees, Zanzibar paper section 2.3.1), plus caveat definitions.

Everything here is immutable. The engine reads it; the compiler builds it; the printer turns it
back into canonical schema text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "AllowedSubject",
    "Arrow",
    "CaveatDefinition",
    "CaveatParameter",
    "ComputedUserset",
    "Definition",
    "Exclusion",
    "Intersection",
    "Nil",
    "Permission",
    "Position",
    "Relation",
    "Rewrite",
    "Schema",
    "SelfRef",
    "Union",
    "walk",
]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a declaration starts in the schema source (1-based line and column)."""

    line: int
    column: int
    source: str = ""

    def __str__(self) -> str:
        prefix = f"{self.source}:" if self.source else ""
        return f"{prefix}{self.line}:{self.column}"


# -- relations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowedSubject:
    """One entry in a relation's type list: ``user``, ``group#member``, ``user:*``,
    ``user with some_caveat``, ``user with expiration``, ``user with some_caveat and expiration``.

    ``relation`` is ``None`` for the object itself (SpiceDB's ellipsis).
    """

    type: str
    relation: str | None = None
    wildcard: bool = False
    caveat: str | None = None
    expiration: bool = False
    position: Position | None = field(default=None, compare=False)

    def __str__(self) -> str:
        text = self.type
        if self.wildcard:
            text += ":*"
        elif self.relation is not None:
            text += f"#{self.relation}"
        traits = [t for t in (self.caveat, "expiration" if self.expiration else None) if t]
        if traits:
            text += " with " + " and ".join(traits)
        return text


@dataclass(frozen=True, slots=True)
class Relation:
    """``relation name: type | type#rel | type:* ...`` -- stored relationships live here."""

    name: str
    allowed: tuple[AllowedSubject, ...]
    comment: str = ""
    position: Position | None = field(default=None, compare=False)


# -- rewrites ---------------------------------------------------------------------------------


class Rewrite:
    """Base of the userset-rewrite nodes of a permission."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Nil(Rewrite):
    """``nil``: the empty set."""

    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True, slots=True)
class SelfRef(Rewrite):
    """``self`` (needs ``use self``): the resource itself, as a subject."""

    def __str__(self) -> str:
        return "self"


@dataclass(frozen=True, slots=True)
class ComputedUserset(Rewrite):
    """A reference to another relation or permission on the same object."""

    relation: str
    position: Position | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.relation


@dataclass(frozen=True, slots=True)
class Arrow(Rewrite):
    """``tupleset->computed`` (= ``tupleset.any(computed)``) or ``tupleset.all(computed)``:
    follow the relation ``tupleset`` to its subjects, then ask for ``computed`` on each of them.
    With ``all``, every such subject must have it (and there must be at least one)."""

    tupleset: str
    computed: str
    function: Literal["any", "all"] = "any"
    position: Position | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.function == "any":
            return f"{self.tupleset}->{self.computed}"
        return f"{self.tupleset}.{self.function}({self.computed})"


@dataclass(frozen=True, slots=True)
class Union(Rewrite):
    """``a + b + ...``"""

    children: tuple[Rewrite, ...]


@dataclass(frozen=True, slots=True)
class Intersection(Rewrite):
    """``a & b & ...``"""

    children: tuple[Rewrite, ...]


@dataclass(frozen=True, slots=True)
class Exclusion(Rewrite):
    """``base - subtract`` (left-associative: ``a - b - c`` is ``(a - b) - c``)."""

    base: Rewrite
    subtract: Rewrite


def walk(node: Rewrite) -> Iterator[Rewrite]:
    """Every node of a rewrite tree, depth first, the node itself first."""
    yield node
    if isinstance(node, Union | Intersection):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Exclusion):
        yield from walk(node.base)
        yield from walk(node.subtract)


@dataclass(frozen=True, slots=True)
class Permission:
    """``permission name = expression``; ``types`` holds an optional annotation
    (``permission view: user | team = ...``)."""

    name: str
    rewrite: Rewrite
    comment: str = ""
    types: tuple[str, ...] = ()
    position: Position | None = field(default=None, compare=False)


# -- definitions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Definition:
    """An object type: its relations and permissions, in source order."""

    name: str
    relations: Mapping[str, Relation] = field(default_factory=dict, hash=False)
    permissions: Mapping[str, Permission] = field(default_factory=dict, hash=False)
    comment: str = ""
    position: Position | None = field(default=None, compare=False)

    def get(self, name: str) -> Relation | Permission | None:
        """The relation or permission called ``name``, or ``None``."""
        found = self.relations.get(name)
        if found is not None:
            return found
        return self.permissions.get(name)

    def has(self, name: str) -> bool:
        return name in self.relations or name in self.permissions


@dataclass(frozen=True, slots=True)
class CaveatParameter:
    """One typed parameter of a caveat, e.g. ``allowed_ips list<ipaddress>``."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class CaveatDefinition:
    """``caveat name(params) { expression }``; the expression is kept as CEL source text."""

    name: str
    parameters: tuple[CaveatParameter, ...]
    expression: str
    comment: str = ""
    position: Position | None = field(default=None, compare=False)
    #: where ``expression`` (stripped) starts in the source, for CEL error positions
    expression_position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Schema:
    """A whole compiled schema. ``uses`` holds the enabled ``use`` flags (``expiration``...)."""

    definitions: Mapping[str, Definition] = field(default_factory=dict, hash=False)
    caveats: Mapping[str, CaveatDefinition] = field(default_factory=dict, hash=False)
    uses: frozenset[str] = frozenset()

    def definition(self, name: str) -> Definition | None:
        return self.definitions.get(name)
