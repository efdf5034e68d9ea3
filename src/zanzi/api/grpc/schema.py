"""authzed.api.v1 SchemaService over :class:`~zanzi.api.service.Service`: read and write the
schema, and reflect on it from the compiled form (ReflectSchema, DiffSchema,
ComputablePermissions, DependentRelations), as SpiceDB answers them: names in source order,
comments as written (``// ...`` or ``/** ... */``), name filters matching by prefix.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from authzed.api.v1 import schema_service_pb2 as ss
from authzed.api.v1 import schema_service_pb2_grpc as ss_grpc
from authzed.api.v1.core_pb2 import ZedToken

from zanzi.api import convert
from zanzi.api.grpc.status import handler
from zanzi.api.service import Service
from zanzi.errors import InvalidArgument, InvalidFilter, UnknownDefinition, UnknownRelation
from zanzi.schema import compile_schema, ir

__all__ = ["SchemaServicer", "diff_schemas", "reflect_definition"]


class SchemaServicer(ss_grpc.SchemaServiceServicer):
    """authzed.api.v1.SchemaService."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @handler
    def ReadSchema(
        self, request: ss.ReadSchemaRequest, context: grpc.ServicerContext
    ) -> ss.ReadSchemaResponse:
        result = self.service.read_schema()
        return ss.ReadSchemaResponse(schema_text=result.text, read_at=ZedToken(token=result.token))

    @handler
    def WriteSchema(
        self, request: ss.WriteSchemaRequest, context: grpc.ServicerContext
    ) -> ss.WriteSchemaResponse:
        token = self.service.write_schema(request.schema)
        return ss.WriteSchemaResponse(written_at=ZedToken(token=token))

    @handler
    def ReflectSchema(
        self, request: ss.ReflectSchemaRequest, context: grpc.ServicerContext
    ) -> ss.ReflectSchemaResponse:
        filters = _Filters(list(request.optional_filters))
        schema, token = self.service.compiled_schema(convert.consistency_from_proto(request.consistency))
        response = ss.ReflectSchemaResponse(read_at=ZedToken(token=token))
        for d in schema.definitions.values():
            if filters.definition(d.name):
                response.definitions.append(reflect_definition(d, filters))
        for c in schema.caveats.values():
            if filters.caveat(c.name):
                response.caveats.append(_caveat(c))
        return response

    @handler
    def DiffSchema(
        self, request: ss.DiffSchemaRequest, context: grpc.ServicerContext
    ) -> ss.DiffSchemaResponse:
        current, token = self.service.compiled_schema(convert.consistency_from_proto(request.consistency))
        comparison = compile_schema(request.comparison_schema)
        return ss.DiffSchemaResponse(
            diffs=list(diff_schemas(current, comparison)), read_at=ZedToken(token=token)
        )

    @handler
    def ComputablePermissions(
        self, request: ss.ComputablePermissionsRequest, context: grpc.ServicerContext
    ) -> ss.ComputablePermissionsResponse:
        schema, token = self.service.compiled_schema(convert.consistency_from_proto(request.consistency))
        _member(schema, request.definition_name, request.relation_name)
        target = (request.definition_name, request.relation_name)
        found = []
        for d in schema.definitions.values():
            if not d.name.startswith(request.optional_definition_name_filter):
                continue
            for p in d.permissions.values():
                if target in _dependencies(schema, d.name, p.name):
                    found.append(
                        ss.ReflectionRelationReference(
                            definition_name=d.name, relation_name=p.name, is_permission=True
                        )
                    )
        found.sort(key=lambda r: (r.definition_name, r.relation_name))
        return ss.ComputablePermissionsResponse(permissions=found, read_at=ZedToken(token=token))

    @handler
    def DependentRelations(
        self, request: ss.DependentRelationsRequest, context: grpc.ServicerContext
    ) -> ss.DependentRelationsResponse:
        schema, token = self.service.compiled_schema(convert.consistency_from_proto(request.consistency))
        d = _member(schema, request.definition_name, request.permission_name)
        if request.permission_name not in d.permissions:
            raise InvalidArgument(
                f"the relation `{request.permission_name}` is not a permission",
                reason="ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
                relationName=request.permission_name,
            )
        refs = sorted(_dependencies(schema, d.name, request.permission_name))
        relations = [
            ss.ReflectionRelationReference(
                definition_name=dn, relation_name=rn, is_permission=rn in schema.definitions[dn].permissions
            )
            for dn, rn in refs
            if (dn, rn) != (d.name, request.permission_name)
        ]
        return ss.DependentRelationsResponse(relations=relations, read_at=ZedToken(token=token))


# -- reflection -------------------------------------------------------------------------------


class _Filters:
    """SpiceDB's ReflectionSchemaFilter rules: name filters are prefixes; relation and permission
    filters need a definition filter; no filters means everything."""

    def __init__(self, filters: list[ss.ReflectionSchemaFilter]) -> None:
        for f in filters:
            if f.optional_definition_name_filter and f.optional_caveat_name_filter:
                raise InvalidFilter("cannot filter by both definition and caveat name")
            if f.optional_relation_name_filter and not f.optional_definition_name_filter:
                raise InvalidFilter("relation name match requires definition name match")
            if f.optional_relation_name_filter and f.optional_permission_name_filter:
                raise InvalidFilter("cannot filter by both relation and permission name")
            if f.optional_permission_name_filter and not f.optional_definition_name_filter:
                raise InvalidFilter("permission name match requires definition name match")
        self.filters = filters

    def _prefix(self, attr: str, name: str, definition: str | None = None) -> bool:
        relevant = [f for f in self.filters if getattr(f, attr)]
        if not relevant:
            return True
        return any(
            name.startswith(getattr(f, attr))
            and (definition is None or definition.startswith(f.optional_definition_name_filter))
            for f in relevant
        )

    def _any(self, attr: str) -> bool:
        return not self.filters or any(getattr(f, attr) for f in self.filters)

    def definition(self, name: str) -> bool:
        return self._any("optional_definition_name_filter") and self._prefix(
            "optional_definition_name_filter", name
        )

    def caveat(self, name: str) -> bool:
        return self._any("optional_caveat_name_filter") and self._prefix("optional_caveat_name_filter", name)

    def relation(self, definition: str, name: str) -> bool:
        return self._prefix("optional_relation_name_filter", name, definition)

    def permission(self, definition: str, name: str) -> bool:
        return self._prefix("optional_permission_name_filter", name, definition)


def _type_reference(a: ir.AllowedSubject) -> ss.ReflectionTypeReference:
    out = ss.ReflectionTypeReference(subject_definition_name=a.type, optional_caveat_name=a.caveat or "")
    if a.relation is not None:
        out.optional_relation_name = a.relation
    elif a.wildcard:
        out.is_public_wildcard = True
    else:
        out.is_terminal_subject = True
    return out


def _relation(r: ir.Relation, parent: str) -> ss.ReflectionRelation:
    return ss.ReflectionRelation(
        name=r.name,
        comment=r.comment,
        parent_definition_name=parent,
        subject_types=[_type_reference(a) for a in r.allowed],
    )


def _permission(p: ir.Permission, parent: str) -> ss.ReflectionPermission:
    return ss.ReflectionPermission(name=p.name, comment=p.comment, parent_definition_name=parent)


def reflect_definition(d: ir.Definition, filters: _Filters | None = None) -> ss.ReflectionDefinition:
    """One definition as ReflectSchema describes it (members kept by ``filters``)."""
    f = filters or _Filters([])
    return ss.ReflectionDefinition(
        name=d.name,
        comment=d.comment,
        relations=[_relation(r, d.name) for r in d.relations.values() if f.relation(d.name, r.name)],
        permissions=[_permission(p, d.name) for p in d.permissions.values() if f.permission(d.name, p.name)],
    )


def _parameter(p: ir.CaveatParameter, parent: str) -> ss.ReflectionCaveatParameter:
    return ss.ReflectionCaveatParameter(name=p.name, type=p.type, parent_caveat_name=parent)


def _caveat(c: ir.CaveatDefinition) -> ss.ReflectionCaveat:
    return ss.ReflectionCaveat(
        name=c.name,
        comment=c.comment,
        parameters=[_parameter(p, c.name) for p in sorted(c.parameters, key=lambda p: p.name)],
        expression=c.expression,
    )


def _member(schema: ir.Schema, definition: str, name: str) -> ir.Definition:
    d = schema.definitions.get(definition)
    if d is None:
        raise UnknownDefinition(f"object definition `{definition}` not found", definition=definition)
    if not d.has(name):
        raise UnknownRelation(
            f"relation/permission `{name}` not found under definition `{definition}`",
            definition=definition,
            relation=name,
        )
    return d


def _dependencies(schema: ir.Schema, definition: str, name: str) -> set[tuple[str, str]]:
    """Every relation and permission that ``definition#name`` is computed from (transitively),
    itself included."""
    seen: set[tuple[str, str]] = set()
    stack = [(definition, name)]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        d = schema.definitions.get(key[0])
        member = d.get(key[1]) if d is not None else None
        if member is None:
            continue
        seen.add(key)
        if isinstance(member, ir.Permission):
            stack.extend(_direct_dependencies(schema, key[0], member.rewrite))
    return seen


def _direct_dependencies(
    schema: ir.Schema, definition: str, rewrite: ir.Rewrite
) -> Iterator[tuple[str, str]]:
    d = schema.definitions[definition]
    for node in ir.walk(rewrite):
        if isinstance(node, ir.ComputedUserset):
            yield definition, node.relation
        elif isinstance(node, ir.Arrow):
            yield definition, node.tupleset
            tupleset = d.relations.get(node.tupleset)
            for a in tupleset.allowed if tupleset is not None else ():
                yield a.type, node.computed


# -- diff -------------------------------------------------------------------------------------


def diff_schemas(current: ir.Schema, comparison: ir.Schema) -> Iterator[ss.ReflectionSchemaDiff]:
    """What changes from ``current`` to ``comparison``: definitions, relations, permissions and
    caveats added or removed, doc comments, permission expressions, relation subject types,
    caveat expressions and parameters."""
    for name, d in comparison.definitions.items():
        if name not in current.definitions:
            yield ss.ReflectionSchemaDiff(definition_added=reflect_definition(d))
    for name, d in current.definitions.items():
        if name not in comparison.definitions:
            yield ss.ReflectionSchemaDiff(definition_removed=reflect_definition(d))
    for name, new in comparison.definitions.items():
        old = current.definitions.get(name)
        if old is not None:
            yield from _diff_definition(old, new)
    for name, c in comparison.caveats.items():
        if name not in current.caveats:
            yield ss.ReflectionSchemaDiff(caveat_added=_caveat(c))
    for name, c in current.caveats.items():
        if name not in comparison.caveats:
            yield ss.ReflectionSchemaDiff(caveat_removed=_caveat(c))
    for name, new_caveat in comparison.caveats.items():
        old_caveat = current.caveats.get(name)
        if old_caveat is not None:
            yield from _diff_caveat(old_caveat, new_caveat)


def _diff_definition(old: ir.Definition, new: ir.Definition) -> Iterator[ss.ReflectionSchemaDiff]:
    if old.comment != new.comment:
        yield ss.ReflectionSchemaDiff(definition_doc_comment_changed=reflect_definition(new))
    for name, r in new.relations.items():
        before = old.relations.get(name)
        if before is None:
            yield ss.ReflectionSchemaDiff(relation_added=_relation(r, new.name))
            continue
        if before.comment != r.comment:
            yield ss.ReflectionSchemaDiff(relation_doc_comment_changed=_relation(r, new.name))
        old_types = {_type_key(a): a for a in before.allowed}
        new_types = {_type_key(a): a for a in r.allowed}
        for key, a in new_types.items():
            if key not in old_types:
                change = ss.ReflectionRelationSubjectTypeChange(
                    relation=_relation(r, new.name), changed_subject_type=_type_reference(a)
                )
                yield ss.ReflectionSchemaDiff(relation_subject_type_added=change)
        for key, a in old_types.items():
            if key not in new_types:
                change = ss.ReflectionRelationSubjectTypeChange(
                    relation=_relation(r, new.name), changed_subject_type=_type_reference(a)
                )
                yield ss.ReflectionSchemaDiff(relation_subject_type_removed=change)
    for name, r in old.relations.items():
        if name not in new.relations:
            yield ss.ReflectionSchemaDiff(relation_removed=_relation(r, old.name))
    for name, p in new.permissions.items():
        prior = old.permissions.get(name)
        if prior is None:
            yield ss.ReflectionSchemaDiff(permission_added=_permission(p, new.name))
            continue
        if prior.comment != p.comment:
            yield ss.ReflectionSchemaDiff(permission_doc_comment_changed=_permission(p, new.name))
        if prior.rewrite != p.rewrite:
            yield ss.ReflectionSchemaDiff(permission_expr_changed=_permission(p, new.name))
    for name, p in old.permissions.items():
        if name not in new.permissions:
            yield ss.ReflectionSchemaDiff(permission_removed=_permission(p, old.name))


def _type_key(a: ir.AllowedSubject) -> tuple[str, str | None, bool, str | None, bool]:
    return (a.type, a.relation, a.wildcard, a.caveat, a.expiration)


def _diff_caveat(old: ir.CaveatDefinition, new: ir.CaveatDefinition) -> Iterator[ss.ReflectionSchemaDiff]:
    if old.comment != new.comment:
        yield ss.ReflectionSchemaDiff(caveat_doc_comment_changed=_caveat(new))
    before = {p.name: p for p in old.parameters}
    after = {p.name: p for p in new.parameters}
    for name, p in after.items():
        if name not in before:
            yield ss.ReflectionSchemaDiff(caveat_parameter_added=_parameter(p, new.name))
        elif before[name].type != p.type:
            change = ss.ReflectionCaveatParameterTypeChange(
                parameter=_parameter(p, new.name), previous_type=before[name].type
            )
            yield ss.ReflectionSchemaDiff(caveat_parameter_type_changed=change)
    for name, p in before.items():
        if name not in after:
            yield ss.ReflectionSchemaDiff(caveat_parameter_removed=_parameter(p, old.name))
    if old.expression.strip() != new.expression.strip():
        yield ss.ReflectionSchemaDiff(caveat_expr_changed=_caveat(new))
