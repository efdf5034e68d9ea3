"""Probes as authzed.api.v1 messages, and responses as answers ("has", "no", "cond")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Consistency,
    ContextualizedCaveat,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Relationship,
    RelationshipUpdate,
    SubjectReference,
    WriteRelationshipsRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import ImportBulkRelationshipsRequest
from google.protobuf.struct_pb2 import Struct

import zanzi
from bench.probes import CheckProbe, LookupProbe, SubjectsProbe

ANSWERS = {
    CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION: "has",
    CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION: "no",
    CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION: "cond",
}


def consistency(mode: str, token: str | None = None) -> Consistency:
    if mode == "full":
        return Consistency(fully_consistent=True)
    if mode == "fresh":
        return Consistency(at_least_as_fresh=ZedToken(token=token or ""))
    return Consistency(minimize_latency=True)


def obj(text: str) -> ObjectReference:
    t, _, i = text.partition(":")
    return ObjectReference(object_type=t, object_id=i)


def subject(text: str) -> SubjectReference:
    o, _, rel = text.partition("#")
    return SubjectReference(object=obj(o), optional_relation=rel)


def struct(values: dict[str, Any] | None) -> Struct | None:
    if not values:
        return None
    s = Struct()
    s.update(values)
    return s


def relationship(text: str) -> Relationship:
    z = zanzi.Relationship.parse(text)
    rel = Relationship(
        resource=ObjectReference(object_type=z.resource.type, object_id=z.resource.id),
        relation=z.relation,
        subject=subject(str(z.subject)),
    )
    if z.caveat is not None:
        rel.optional_caveat.CopyFrom(
            ContextualizedCaveat(caveat_name=z.caveat.name, context=struct(dict(z.caveat.context)))
        )
    return rel


def touch(texts: Iterable[str]) -> WriteRelationshipsRequest:
    return WriteRelationshipsRequest(
        updates=[
            RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=relationship(t))
            for t in texts
        ]
    )


def import_requests(texts: Iterable[str], chunk: int = 1000) -> Iterator[ImportBulkRelationshipsRequest]:
    batch: list[Relationship] = []
    for t in texts:
        batch.append(relationship(t))
        if len(batch) >= chunk:
            yield ImportBulkRelationshipsRequest(relationships=batch)
            batch = []
    if batch:
        yield ImportBulkRelationshipsRequest(relationships=batch)


def check(p: CheckProbe, mode: str = "min", token: str | None = None) -> CheckPermissionRequest:
    return CheckPermissionRequest(
        consistency=consistency(mode, token),
        resource=obj(p.resource),
        permission=p.permission,
        subject=subject(p.subject),
        context=struct(p.context),
    )


def check_bulk(probes: list[CheckProbe], mode: str = "min") -> CheckBulkPermissionsRequest:
    return CheckBulkPermissionsRequest(
        consistency=consistency(mode),
        items=[
            CheckBulkPermissionsRequestItem(
                resource=obj(p.resource),
                permission=p.permission,
                subject=subject(p.subject),
                context=struct(p.context),
            )
            for p in probes
        ],
    )


def bulk_answers(resp: Any) -> list[str]:
    return [
        f"error: {pair.error.message}" if pair.HasField("error") else ANSWERS[pair.item.permissionship]
        for pair in resp.pairs
    ]


def lookup_resources(p: LookupProbe, mode: str = "min") -> LookupResourcesRequest:
    return LookupResourcesRequest(
        consistency=consistency(mode),
        resource_object_type=p.resource_type,
        permission=p.permission,
        subject=subject(p.subject),
        context=struct(p.context),
    )


def lookup_subjects(p: SubjectsProbe, mode: str = "min") -> LookupSubjectsRequest:
    return LookupSubjectsRequest(
        consistency=consistency(mode),
        resource=obj(p.resource),
        permission=p.permission,
        subject_object_type=p.subject_type,
    )
