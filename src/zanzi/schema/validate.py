"""Semantic checks over a compiled schema, in the spirit of SpiceDB's type system.

:func:`validate` raises :class:`~zanzi.errors.SchemaValidationError` for the first problem (errors
name the definition, the relation and the line and column); :func:`problems` lists them all.
What SpiceDB only *warns* about (``zed validate`` and the playground) is in :func:`lint`, which
returns :class:`SchemaWarning` s and never raises.

Errors (SpiceDB rejects these when the schema is written):

* names that do not match SpiceDB's patterns; relations without any allowed type; an allowed type
  listed twice;
* an allowed type naming an unknown definition, ``type#rel`` naming an unknown relation or
  permission, ``type#rel`` where ``rel`` (transitively) allows a wildcard, an unknown caveat,
  ``with expiration`` or ``self`` without the matching ``use`` statement;
* a permission referring to a name its definition does not have; an arrow whose left side is not
  a relation of the definition (unknown, or a permission) or allows a wildcard;
* a permission that refers to itself outside an arrow, and cycles of plain aliases
  (``permission a = b`` / ``permission b = a``).

Warnings (as SpiceDB's ``pkg/development`` lints): ``arrow-references-unreachable-relation``
(the arrow's right side exists on none of the tupleset's subject types), ``arrow-walks-subject-relation``,
``arrow-references-relation``, ``relation-name-references-parent``, ``permission-references-itself``.
A ``// spicedb-ignore-warning: <name>`` comment on the relation or permission silences one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from zanzi.errors import SchemaValidationError
from zanzi.schema import ir
from zanzi.schema.compiler import DEFINITION_NAME_PATTERN, RELATION_NAME_PATTERN

__all__ = ["SchemaWarning", "lint", "problems", "validate"]

_DEFINITION_NAME = re.compile(DEFINITION_NAME_PATTERN)
_RELATION_NAME = re.compile(RELATION_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class SchemaWarning:
    """A lint finding: ``name`` is SpiceDB's warning name (``arrow-references-relation``...)."""

    name: str
    message: str
    definition: str
    relation: str
    position: ir.Position | None = None

    def __str__(self) -> str:
        where = f" ({self.position})" if self.position else ""
        return f"{self.message} ({self.name}){where}"


def _error(
    message: str, position: ir.Position | None, definition: str | None = None, relation: str | None = None
) -> SchemaValidationError:
    where = ""
    if position is not None:
        where = f"line {position.line}, column {position.column}"
        if position.source:
            where = f"`{position.source}`, {where}"
        where = f" (in {where})"
    return SchemaValidationError(
        message + where,
        definition=definition,
        relation=relation,
        line=position.line if position else None,
        column=position.column if position else None,
        source=position.source if position and position.source else None,
    )


class _Checker:
    def __init__(self, schema: ir.Schema) -> None:
        self.schema = schema
        self._wildcards: dict[tuple[str, str], tuple[str, str] | None] = {}

    def wildcard_via(self, definition: str, relation: str) -> tuple[str, str] | None:
        """``(wildcard type, "def#rel" that allows it)`` if ``definition#relation`` reaches a
        wildcard through its allowed types (following ``type#rel`` subjects), else ``None``."""
        key = (definition, relation)
        if key not in self._wildcards:
            self._wildcards[key] = self._find_wildcard(definition, relation, set())
        return self._wildcards[key]

    def _find_wildcard(
        self, definition: str, relation: str, seen: set[tuple[str, str]]
    ) -> tuple[str, str] | None:
        if (definition, relation) in seen:
            return None
        seen.add((definition, relation))
        found_def = self.schema.definitions.get(definition)
        rel = found_def.relations.get(relation) if found_def is not None else None
        if rel is None:
            return None
        for allowed in rel.allowed:
            if allowed.wildcard:
                return allowed.type, f"{definition}#{relation}"
            if allowed.relation is not None:
                found = self._find_wildcard(allowed.type, allowed.relation, seen)
                if found is not None:
                    return found
        return None

    # -- errors -----------------------------------------------------------------------------

    def problems(self) -> Iterator[SchemaValidationError]:
        for caveat in self.schema.caveats.values():
            if not _DEFINITION_NAME.match(caveat.name):
                yield _error(
                    f"caveat `{caveat.name}` is not a valid name: does not match regex pattern "
                    f"`{DEFINITION_NAME_PATTERN}`",
                    caveat.position,
                )
            if not caveat.parameters:
                yield _error(
                    f"caveat `{caveat.name}` must have at least one parameter defined", caveat.position
                )
        for definition in self.schema.definitions.values():
            yield from self._definition(definition)

    def _definition(self, definition: ir.Definition) -> Iterator[SchemaValidationError]:
        name = definition.name
        if not _DEFINITION_NAME.match(name):
            yield _error(
                f"error in object definition {name}: name does not match regex pattern "
                f"`{DEFINITION_NAME_PATTERN}`",
                definition.position,
                name,
            )
        for relation in definition.relations.values():
            if relation.name in definition.permissions:
                yield _error(
                    f"found duplicate relation/permission name `{relation.name}` under definition `{name}`",
                    relation.position,
                    name,
                    relation.name,
                )
            yield from self._relation(definition, relation)
        for permission in definition.permissions.values():
            yield from self._permission(definition, permission)
        yield from self._alias_cycles(definition)

    def _relation(self, definition: ir.Definition, relation: ir.Relation) -> Iterator[SchemaValidationError]:
        dname, rname = definition.name, relation.name
        if not _RELATION_NAME.match(rname):
            yield _error(
                f"error in relation {rname}: name does not match regex pattern `{RELATION_NAME_PATTERN}`",
                relation.position,
                dname,
                rname,
            )
        if not relation.allowed:
            yield _error(
                f"at least one allowed relation/permission is required to be defined for relation `{rname}`",
                relation.position,
                dname,
                rname,
            )
        seen: set[str] = set()
        for allowed in relation.allowed:
            where = allowed.position or relation.position
            text = str(allowed)
            if text in seen:
                yield _error(
                    f"found duplicate allowed subject type `{text}` on relation `{rname}` under "
                    f"definition `{dname}`",
                    where,
                    dname,
                    rname,
                )
            seen.add(text)
            yield from self._allowed(definition, relation, allowed, where)

    def _allowed(
        self,
        definition: ir.Definition,
        relation: ir.Relation,
        allowed: ir.AllowedSubject,
        where: ir.Position | None,
    ) -> Iterator[SchemaValidationError]:
        dname, rname = definition.name, relation.name
        if allowed.wildcard and allowed.relation is not None:
            yield _error(
                f"allowed type `{allowed.type}` on relation `{rname}` cannot be both a wildcard and "
                f"a subject relation",
                where,
                dname,
                rname,
            )
        target = self.schema.definitions.get(allowed.type)
        if target is None:
            yield _error(
                f"could not lookup definition `{allowed.type}` for relation `{rname}`: object "
                f"definition `{allowed.type}` not found",
                where,
                dname,
                rname,
            )
        elif allowed.relation is not None:
            if not target.has(allowed.relation):
                yield _error(
                    f"relation/permission `{allowed.relation}` not found under definition `{allowed.type}`",
                    where,
                    dname,
                    rname,
                )
            elif allowed.type != dname:
                via = self.wildcard_via(allowed.type, allowed.relation)
                if via is not None:
                    yield _error(
                        f"for relation `{rname}`: relation/permission `{allowed.type}#{allowed.relation}` "
                        f"includes wildcard type `{via[0]}` via relation `{via[1]}`: wildcard "
                        f"relations cannot be transitively included",
                        where,
                        dname,
                        rname,
                    )
        if allowed.caveat is not None and allowed.caveat not in self.schema.caveats:
            hint = ""
            if allowed.caveat.rsplit("/", 1)[-1] == "expiration" and "expiration" not in self.schema.uses:
                hint = "; to require an expiration instead, add `use expiration` at the top of the schema"
            yield _error(
                f"could not lookup caveat `{allowed.caveat}` for relation `{rname}`: caveat with "
                f"name `{allowed.caveat}` not found{hint}",
                where,
                dname,
                rname,
            )
        if allowed.expiration and "expiration" not in self.schema.uses:
            yield _error(
                f"relation `{rname}` uses `with expiration`, which needs `use expiration` at the top "
                f"of the schema",
                where,
                dname,
                rname,
            )

    def _permission(
        self, definition: ir.Definition, permission: ir.Permission
    ) -> Iterator[SchemaValidationError]:
        dname, pname = definition.name, permission.name
        if not _RELATION_NAME.match(pname):
            yield _error(
                f"error in permission {pname}: name does not match regex pattern `{RELATION_NAME_PATTERN}`",
                permission.position,
                dname,
                pname,
            )
        for node in ir.walk(permission.rewrite):
            if isinstance(node, ir.ComputedUserset):
                where = node.position or permission.position
                if not definition.has(node.relation):
                    yield _error(
                        f"relation/permission `{node.relation}` not found under definition `{dname}`",
                        where,
                        dname,
                        pname,
                    )
                elif node.relation == pname:
                    yield _error(
                        f"permission `{pname}` under definition `{dname}` references itself, which "
                        f"would recurse forever; refer to it through an arrow or remove the "
                        f"reference",
                        where,
                        dname,
                        pname,
                    )
            elif isinstance(node, ir.Arrow):
                yield from self._arrow(definition, permission, node)
            elif isinstance(node, ir.SelfRef) and "self" not in self.schema.uses:
                yield _error(
                    f"permission `{pname}` uses `self`, which needs `use self` at the top of the schema",
                    permission.position,
                    dname,
                    pname,
                )

    def _arrow(
        self, definition: ir.Definition, permission: ir.Permission, arrow: ir.Arrow
    ) -> Iterator[SchemaValidationError]:
        dname, pname = definition.name, permission.name
        where = arrow.position or permission.position
        if not definition.has(arrow.tupleset):
            yield _error(
                f"relation/permission `{arrow.tupleset}` not found under definition `{dname}`",
                where,
                dname,
                pname,
            )
            return
        if arrow.tupleset in definition.permissions:
            yield _error(
                f"under permission `{pname}` under definition `{dname}`: permissions cannot be used on "
                f"the left hand side of an arrow (found `{arrow.tupleset}`)",
                where,
                dname,
                pname,
            )
            return
        via = self.wildcard_via(dname, arrow.tupleset)
        if via is not None:
            yield _error(
                f"for arrow under permission `{pname}`: relation `{dname}#{arrow.tupleset}` includes "
                f"wildcard type `{via[0]}` via relation `{via[1]}`: wildcard relations cannot be used "
                f"on the left side of arrows",
                where,
                dname,
                pname,
            )

    def _alias_cycles(self, definition: ir.Definition) -> Iterator[SchemaValidationError]:
        """Permissions that only alias another permission must not alias each other in a circle."""
        aliases: dict[str, str] = {}
        for permission in definition.permissions.values():
            target = _alias_target(permission.rewrite)
            if target is not None and target in definition.permissions and target != permission.name:
                aliases[permission.name] = target
        unresolved = dict(aliases)
        while unresolved:
            done = [name for name, target in unresolved.items() if target not in unresolved]
            if not done:
                names = sorted(unresolved)
                first = next(p for p in definition.permissions.values() if p.name in unresolved)
                yield _error(
                    f"under definition `{definition.name}`, there exists a cycle in permissions: "
                    f"{', '.join(names)}",
                    first.position,
                    definition.name,
                    first.name,
                )
                return
            for name in done:
                del unresolved[name]


def _alias_target(rewrite: ir.Rewrite) -> str | None:
    if isinstance(rewrite, ir.Union) and len(rewrite.children) == 1:
        rewrite = rewrite.children[0]
    return rewrite.relation if isinstance(rewrite, ir.ComputedUserset) else None


def problems(schema: ir.Schema) -> list[SchemaValidationError]:
    """Every validation error in ``schema``, in schema order."""
    return list(_Checker(schema).problems())


def validate(schema: ir.Schema) -> None:
    """Raise :class:`SchemaValidationError` for the first problem in ``schema``."""
    for problem in _Checker(schema).problems():
        raise problem


# -- warnings ---------------------------------------------------------------------------------


def _ignored(item: ir.Relation | ir.Permission, name: str) -> bool:
    marker = f"// spicedb-ignore-warning: {name}"
    return any(line.strip() == marker for line in item.comment.splitlines())


def lint(schema: ir.Schema) -> list[SchemaWarning]:
    """SpiceDB's development warnings for ``schema`` (it should already be valid)."""
    warnings: list[SchemaWarning] = []
    for definition in schema.definitions.values():
        dname = definition.name
        members: list[ir.Relation | ir.Permission] = [
            *definition.relations.values(),
            *definition.permissions.values(),
        ]
        for item in members:
            kind = "Permission" if isinstance(item, ir.Permission) else "Relation"
            if item.name.endswith(dname) and not _ignored(item, "relation-name-references-parent"):
                warnings.append(
                    SchemaWarning(
                        "relation-name-references-parent",
                        f'{kind} "{item.name}" references parent type "{dname}" in its name; '
                        f"it is recommended to drop the suffix",
                        dname,
                        item.name,
                        item.position,
                    )
                )
        for permission in definition.permissions.values():
            for node in ir.walk(permission.rewrite):
                if isinstance(node, ir.ComputedUserset) and node.relation == permission.name:
                    if not _ignored(permission, "permission-references-itself"):
                        warnings.append(
                            SchemaWarning(
                                "permission-references-itself",
                                f'Permission "{permission.name}" references itself, which will cause '
                                f"an error to be raised due to infinite recursion",
                                dname,
                                permission.name,
                                node.position or permission.position,
                            )
                        )
                elif isinstance(node, ir.Arrow):
                    warnings.extend(_arrow_warnings(schema, definition, permission, node))
    return warnings


def _arrow_warnings(
    schema: ir.Schema, definition: ir.Definition, permission: ir.Permission, arrow: ir.Arrow
) -> Iterator[SchemaWarning]:
    relation = definition.relations.get(arrow.tupleset)
    if relation is None:
        return
    subjects = [a for a in relation.allowed if not a.wildcard]
    where = arrow.position or permission.position
    dname, pname = definition.name, permission.name

    def warn(name: str, message: str) -> Iterator[SchemaWarning]:
        if not _ignored(permission, name):
            yield SchemaWarning(name, message, dname, pname, where)

    reachable = any(
        (target := schema.definitions.get(s.type)) is not None and target.has(arrow.computed)
        for s in subjects
    )
    if not reachable:
        yield from warn(
            "arrow-references-unreachable-relation",
            f'Arrow `{arrow}` under permission "{pname}" references relation/permission '
            f'"{arrow.computed}" that does not exist on any subject types of relation '
            f'"{arrow.tupleset}"',
        )
    for subject in subjects:
        if subject.relation is not None:
            yield from warn(
                "arrow-walks-subject-relation",
                f'Arrow `{arrow}` under permission "{pname}" references relation "{arrow.tupleset}" '
                f'that has relation "{subject.relation}" on subject "{subject.type}": *the subject '
                f"relation will be ignored for the arrow*",
            )
            break
    for subject in subjects:
        target = schema.definitions.get(subject.type)
        if subject.type == dname or target is None or arrow.computed not in target.relations:
            continue
        yield from warn(
            "arrow-references-relation",
            f'Arrow `{arrow}` under permission "{pname}" references relation "{arrow.computed}" on '
            f'definition "{subject.type}"; it is recommended to point to a permission',
        )
        break
