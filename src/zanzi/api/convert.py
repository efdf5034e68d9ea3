"""Wire messages (authzed.api.v1, as the ``authzed`` package ships them) to and from Zanzi's model
types. The one place that knows both; the gRPC servicers and the HTTP gateway go through it.

Conventions of the wire, as SpiceDB reads them:

- an empty string is an absent optional field (``optional_relation: ""`` is "no relation");
- a ``SubjectFilter.optional_relation`` message that is present with ``relation: ""`` asks for
  subjects without a relation (SpiceDB's ellipsis); an absent one matches any relation;
- an absent ``Consistency`` (or one with nothing chosen) is ``minimize_latency``;
- caveat context is a ``google.protobuf.Struct`` (numbers arrive as doubles; the caveat layer
  turns integral ones back into ints for ``int`` parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from authzed.api.v1 import core_pb2 as core
from authzed.api.v1 import permission_service_pb2 as ps
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from zanzi.errors import InvalidArgument, InvalidContext
from zanzi.model import (
    ELLIPSIS,
    Caveat,
    Consistency,
    ExpandTree,
    ObjectRef,
    Operation,
    Permissionship,
    Precondition,
    PreconditionKind,
    Relationship,
    RelationshipFilter,
    SetOperation,
    SubjectFilter,
    SubjectRef,
    Update,
)
from zanzi.store.base import ChangeKind

__all__ = [
    "change_to_proto",
    "check_permissionship",
    "consistency_from_proto",
    "context_from_struct",
    "context_to_struct",
    "expand_tree_to_proto",
    "filter_from_proto",
    "filter_to_proto",
    "lookup_permissionship",
    "object_from_proto",
    "object_to_proto",
    "precondition_from_proto",
    "relationship_from_proto",
    "relationship_to_proto",
    "subject_from_proto",
    "subject_to_proto",
    "update_from_proto",
]

# -- references -------------------------------------------------------------------------------


def object_from_proto(msg: core.ObjectReference) -> ObjectRef:
    return ObjectRef(msg.object_type, msg.object_id)


def object_to_proto(ref: ObjectRef) -> core.ObjectReference:
    return core.ObjectReference(object_type=ref.type, object_id=ref.id)


def subject_from_proto(msg: core.SubjectReference) -> SubjectRef:
    relation = msg.optional_relation
    return SubjectRef(
        msg.object.object_type,
        msg.object.object_id,
        None if relation in ("", ELLIPSIS) else relation,
    )


def subject_to_proto(ref: SubjectRef) -> core.SubjectReference:
    return core.SubjectReference(
        object=core.ObjectReference(object_type=ref.type, object_id=ref.id),
        optional_relation=ref.relation or "",
    )


# -- caveat context ---------------------------------------------------------------------------


def context_from_struct(msg: Struct | None) -> dict[str, Any] | None:
    """A ``Struct`` as a plain dict; ``None`` when it is absent or empty."""
    if msg is None or not msg.fields:
        return None
    return json_format.MessageToDict(msg)


def context_to_struct(context: Mapping[str, Any]) -> Struct:
    out = Struct()
    try:
        out.update(dict(context))
    except (TypeError, ValueError) as exc:
        raise InvalidContext(f"caveat context cannot be sent as a Struct: {exc}") from None
    return out


def _timestamp_from_proto(msg: Timestamp) -> datetime:
    return msg.ToDatetime(tzinfo=UTC)


def _timestamp_to_proto(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


# -- relationships ----------------------------------------------------------------------------


def relationship_from_proto(msg: core.Relationship) -> Relationship:
    """A relationship from the wire, its names and ids checked as SpiceDB does."""
    caveat = None
    if msg.HasField("optional_caveat") and msg.optional_caveat.caveat_name:
        context = context_from_struct(msg.optional_caveat.context) or {}
        caveat = Caveat(msg.optional_caveat.caveat_name, context)
    expiration = None
    if msg.HasField("optional_expires_at"):
        expiration = _timestamp_from_proto(msg.optional_expires_at)
    rel = Relationship(
        object_from_proto(msg.resource),
        msg.relation,
        subject_from_proto(msg.subject),
        caveat,
        expiration,
    )
    return rel.validate()


def relationship_to_proto(rel: Relationship) -> core.Relationship:
    out = core.Relationship(
        resource=object_to_proto(rel.resource),
        relation=rel.relation,
        subject=subject_to_proto(rel.subject),
    )
    if rel.caveat is not None:
        out.optional_caveat.caveat_name = rel.caveat.name
        if rel.caveat.context:
            out.optional_caveat.context.CopyFrom(context_to_struct(rel.caveat.context))
    if rel.expiration is not None:
        out.optional_expires_at.CopyFrom(_timestamp_to_proto(rel.expiration))
    return out


_OPERATIONS = {
    core.RelationshipUpdate.OPERATION_CREATE: Operation.CREATE,
    core.RelationshipUpdate.OPERATION_TOUCH: Operation.TOUCH,
    core.RelationshipUpdate.OPERATION_DELETE: Operation.DELETE,
}


def update_from_proto(msg: core.RelationshipUpdate) -> Update:
    operation = _OPERATIONS.get(msg.operation)
    if operation is None:
        raise InvalidArgument(f"unknown relationship update operation {msg.operation}", field="operation")
    return Update(operation, relationship_from_proto(msg.relationship))


def change_to_proto(kind: ChangeKind, rel: Relationship) -> core.RelationshipUpdate:
    """A watched change: TOUCH for a write (create or replace), DELETE for a removal."""
    operation = (
        core.RelationshipUpdate.OPERATION_DELETE
        if kind is ChangeKind.DELETE
        else core.RelationshipUpdate.OPERATION_TOUCH
    )
    return core.RelationshipUpdate(operation=operation, relationship=relationship_to_proto(rel))


# -- filters, preconditions, consistency ------------------------------------------------------


def filter_from_proto(msg: ps.RelationshipFilter) -> RelationshipFilter:
    """A relationship filter; :class:`~zanzi.errors.InvalidFilter` if no field is set."""
    subject = None
    if msg.HasField("optional_subject_filter"):
        sf = msg.optional_subject_filter
        relation: str | None = None
        if sf.HasField("optional_relation"):
            relation = sf.optional_relation.relation or ELLIPSIS
        subject = SubjectFilter(sf.subject_type, sf.optional_subject_id or None, relation)
    return RelationshipFilter(
        resource_type=msg.resource_type or None,
        resource_id=msg.optional_resource_id or None,
        resource_id_prefix=msg.optional_resource_id_prefix or None,
        relation=msg.optional_relation or None,
        subject=subject,
    ).validate()


def filter_to_proto(f: RelationshipFilter) -> ps.RelationshipFilter:
    out = ps.RelationshipFilter(
        resource_type=f.resource_type or "",
        optional_resource_id=f.resource_id or "",
        optional_resource_id_prefix=f.resource_id_prefix or "",
        optional_relation=f.relation or "",
    )
    if f.subject is not None:
        out.optional_subject_filter.subject_type = f.subject.type
        out.optional_subject_filter.optional_subject_id = f.subject.id or ""
        if f.subject.relation is not None:
            relation = "" if f.subject.relation == ELLIPSIS else f.subject.relation
            out.optional_subject_filter.optional_relation.relation = relation
    return out


_PRECONDITIONS = {
    ps.Precondition.OPERATION_MUST_MATCH: PreconditionKind.MUST_MATCH,
    ps.Precondition.OPERATION_MUST_NOT_MATCH: PreconditionKind.MUST_NOT_MATCH,
}


def precondition_from_proto(msg: ps.Precondition) -> Precondition:
    kind = _PRECONDITIONS.get(msg.operation)
    if kind is None:
        raise InvalidArgument(f"unknown precondition operation {msg.operation}", field="operation")
    return Precondition(kind, filter_from_proto(msg.filter))


def consistency_from_proto(msg: ps.Consistency | None) -> Consistency | None:
    """The request's consistency; ``None`` (minimize latency) when none was chosen."""
    if msg is None:
        return None
    which = msg.WhichOneof("requirement")
    if which == "at_least_as_fresh":
        return Consistency.at_least_as_fresh(msg.at_least_as_fresh.token)
    if which == "at_exact_snapshot":
        return Consistency.at_exact_snapshot(msg.at_exact_snapshot.token)
    if which == "fully_consistent":
        return Consistency.fully_consistent()
    return None


# -- answers ----------------------------------------------------------------------------------

_CHECK = {
    Permissionship.NO_PERMISSION: ps.CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION,
    Permissionship.HAS_PERMISSION: ps.CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION,
    Permissionship.CONDITIONAL_PERMISSION: ps.CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION,
}


def check_permissionship(p: Permissionship) -> ps.CheckPermissionResponse.Permissionship.ValueType:
    return _CHECK[p]


def lookup_permissionship(p: Permissionship) -> ps.LookupPermissionship.ValueType:
    """Lookups only ever return granted or conditional answers."""
    if p is Permissionship.CONDITIONAL_PERMISSION:
        return ps.LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
    return ps.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION


_SET_OPERATIONS = {
    SetOperation.UNION: core.AlgebraicSubjectSet.OPERATION_UNION,
    SetOperation.INTERSECTION: core.AlgebraicSubjectSet.OPERATION_INTERSECTION,
    SetOperation.EXCLUSION: core.AlgebraicSubjectSet.OPERATION_EXCLUSION,
}


def expand_tree_to_proto(tree: ExpandTree) -> core.PermissionRelationshipTree:
    """Zanzi's userset tree as SpiceDB's ``PermissionRelationshipTree``: a leaf lists the subjects
    stored on a relation; other nodes combine their children."""
    out = core.PermissionRelationshipTree(
        expanded_object=object_to_proto(tree.resource), expanded_relation=tree.relation
    )
    if tree.operation is SetOperation.LEAF:
        out.leaf.subjects.extend(subject_to_proto(s.subject) for s in tree.subjects)
        return out
    out.intermediate.operation = _SET_OPERATIONS[tree.operation]
    out.intermediate.children.extend(expand_tree_to_proto(child) for child in tree.children)
    return out
