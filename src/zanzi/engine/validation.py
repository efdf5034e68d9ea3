"""Checks of requests against the schema: relationships before they are written, references
before they are read, and schema changes against the relationships already stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from zanzi.engine.typesystem import TypeSystem
from zanzi.errors import (
    RelationshipNotAllowed,
    SchemaInUse,
    UnknownCaveat,
    UnknownDefinition,
    UnknownRelation,
)
from zanzi.model import ELLIPSIS, Relationship, SubjectRef
from zanzi.schema import ir
from zanzi.store.base import RelationshipQuery

__all__ = [
    "check_schema_change",
    "validate_permission_reference",
    "validate_relationship",
    "validate_subject_reference",
]


def _definition(ts: TypeSystem, name: str) -> ir.Definition:
    d = ts.definitions.get(name)
    if d is None:
        raise UnknownDefinition(f"object definition `{name}` not found", definition=name)
    return d


def validate_permission_reference(ts: TypeSystem, resource_type: str, permission: str) -> None:
    """``resource_type#permission`` must name a relation or permission of the schema."""
    d = _definition(ts, resource_type)
    if not d.has(permission):
        raise UnknownRelation(
            f"relation/permission `{permission}` not found under definition `{resource_type}`",
            definition=resource_type,
            relation=permission,
        )


def validate_subject_reference(ts: TypeSystem, subject_type: str, subject_relation: str | None) -> None:
    """A subject type (and optional relation) must exist in the schema."""
    d = _definition(ts, subject_type)
    if subject_relation is not None and not d.has(subject_relation):
        raise UnknownRelation(
            f"relation/permission `{subject_relation}` not found under definition `{subject_type}`",
            definition=subject_type,
            relation=subject_relation,
        )


def validate_relationship(
    ts: TypeSystem, rel: Relationship, *, for_delete: bool = False, well_formed: bool = False
) -> None:
    """Raise unless ``rel`` may be stored under the schema: known type and relation (not a
    permission), subject type allowed on it (wildcard, caveat and expiration included).

    Deletes only need the names to exist, as in SpiceDB. ``well_formed`` skips re-checking
    names and ids (for relationships that :meth:`Relationship.parse` just produced).
    """
    if not well_formed:
        rel.validate()
    d = _definition(ts, rel.resource.type)
    relation = d.relations.get(rel.relation)
    if relation is None:
        if rel.relation in d.permissions:
            raise RelationshipNotAllowed(
                f"cannot write a relationship to permission `{rel.relation}` under definition "
                f"`{d.name}`: relationships can only be written to relations",
                definition=d.name,
                relation=rel.relation,
                reason="ERROR_REASON_CANNOT_UPDATE_PERMISSION",
            )
        raise UnknownRelation(
            f"relation `{rel.relation}` not found under definition `{d.name}`",
            definition=d.name,
            relation=rel.relation,
        )
    s = rel.subject
    validate_subject_reference(ts, s.type, s.relation)
    if for_delete:
        return
    if rel.caveat is not None and rel.caveat.name not in ts.schema.caveats:
        raise UnknownCaveat(f"caveat `{rel.caveat.name}` not found", caveat=rel.caveat.name)
    candidates = [a for a in relation.allowed if a.type == s.type and _shape_matches(a, s)]
    if not candidates:
        raise RelationshipNotAllowed(
            f"subjects of type `{_describe_subject(s)}` are not allowed on relation "
            f"`{d.name}#{relation.name}`",
            definition=d.name,
            relation=relation.name,
        )
    caveat = rel.caveat.name if rel.caveat is not None else None
    expiring = rel.expiration is not None
    if not any(a.caveat == caveat and a.expiration == expiring for a in candidates):
        raise RelationshipNotAllowed(
            f"subjects of type `{_describe_subject(s, caveat, expiring)}` are not allowed on relation "
            f"`{d.name}#{relation.name}`; allowed: {' | '.join(str(a) for a in relation.allowed)}",
            definition=d.name,
            relation=relation.name,
        )


def _shape_matches(a: ir.AllowedSubject, s: SubjectRef) -> bool:
    if s.is_wildcard:
        return a.wildcard
    return not a.wildcard and a.relation == s.relation


def _describe_subject(s: SubjectRef, caveat: str | None = None, expiring: bool = False) -> str:
    text = s.type + (":*" if s.is_wildcard else f"#{s.relation}" if s.relation else "")
    traits = [t for t in (caveat, "expiration" if expiring else None) if t]
    if traits:
        text += " with " + " and ".join(traits)
    return text


def check_schema_change(
    old: ir.Schema | None, new: ir.Schema, find: Callable[[RelationshipQuery], Iterator[Relationship]]
) -> None:
    """Refuse a schema change that would leave stored relationships without a meaning: a
    removed definition or relation that still has relationships, a relation turned into a
    permission, or an allowed subject type removed while relationships of that shape exist.

    ``find`` reads the current relationships matching a query.
    """
    if old is None:
        return

    def exists(q: RelationshipQuery) -> bool:
        return next(iter(find(q)), None) is not None

    new_ts = TypeSystem(new)
    for name, d in old.definitions.items():
        nd = new.definitions.get(name)
        if nd is None:
            if exists(RelationshipQuery(resource_type=name)) or exists(RelationshipQuery(subject_type=name)):
                raise SchemaInUse(
                    f"cannot delete object definition `{name}`, as a relationship exists under it",
                    definition=name,
                )
            continue
        for rname, rel in d.relations.items():
            new_rel = nd.relations.get(rname)
            if new_rel is None:
                if exists(RelationshipQuery(resource_type=name, relation=rname)):
                    kind = "change relation" if rname in nd.permissions else "delete relation"
                    raise SchemaInUse(
                        f"cannot {kind} `{rname}` in object definition `{name}`, as a relationship "
                        "exists under it",
                        definition=name,
                        relation=rname,
                    )
                continue
            for allowed in rel.allowed:
                if allowed in new_rel.allowed:
                    continue
                q = RelationshipQuery(
                    resource_type=name,
                    relation=rname,
                    subject_type=allowed.type,
                    subject_ids=("*",) if allowed.wildcard else None,
                    subject_relation=allowed.relation or ELLIPSIS,
                )
                for stored in find(q):
                    if stored.subject.is_wildcard != allowed.wildcard:
                        continue
                    try:
                        validate_relationship(new_ts, stored)
                    except (RelationshipNotAllowed, UnknownCaveat):
                        raise SchemaInUse(
                            f"cannot remove allowed type `{allowed}` from relation `{rname}` in object "
                            f"definition `{name}`, as a relationship exists with it: {stored}",
                            definition=name,
                            relation=rname,
                        ) from None
        for rname in [*d.relations, *d.permissions]:
            if not nd.has(rname) and exists(RelationshipQuery(subject_type=name, subject_relation=rname)):
                raise SchemaInUse(
                    f"cannot delete `{rname}` in object definition `{name}`, as a relationship "
                    "uses it as a subject relation",
                    definition=name,
                    relation=rname,
                )
