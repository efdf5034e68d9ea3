"""Talking to a server as a client would: authzed.api.v1 messages built from SpiceDB's text
syntax, and one small interface over two transports -- the official gRPC client, and plain
HTTP/JSON requests (urllib) to the gateway -- so the same scenario runs through both.

Answers are normalized to short strings: ``"has"``, ``"no"``, ``"conditional"``, or
``"error:<GRPC_CODE>"`` for a per-item error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC
from typing import Any

import grpc
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Consistency,
    ContextualizedCaveat,
    DeleteRelationshipsRequest,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    ReflectSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from authzed.api.v1.permission_service_pb2 import LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from zanzi.model import Relationship as ZRel

FULL = Consistency(fully_consistent=True)

# -- messages ---------------------------------------------------------------------------------


def obj(text: str) -> ObjectReference:
    t, _, i = text.partition(":")
    return ObjectReference(object_type=t, object_id=i)


def subj(text: str) -> SubjectReference:
    o, _, r = text.partition("#")
    return SubjectReference(object=obj(o), optional_relation="" if r == "..." else r)


def struct(value: dict[str, Any] | None) -> Struct:
    out = Struct()
    if value:
        out.update(value)
    return out


def rel(text: str | ZRel) -> Relationship:
    z = ZRel.parse(text)
    out = Relationship(resource=obj(str(z.resource)), relation=z.relation, subject=subj(str(z.subject)))
    if z.caveat is not None:
        out.optional_caveat.CopyFrom(
            ContextualizedCaveat(caveat_name=z.caveat.name, context=struct(dict(z.caveat.context)))
        )
    if z.expiration is not None:
        ts = Timestamp()
        ts.FromDatetime(z.expiration.astimezone(UTC))
        out.optional_expires_at.CopyFrom(ts)
    return out


def update(text: str | ZRel, op: int = RelationshipUpdate.OPERATION_TOUCH) -> RelationshipUpdate:
    return RelationshipUpdate(operation=op, relationship=rel(text))


def check_request(
    resource: str,
    permission: str,
    subject: str,
    context: dict[str, Any] | None = None,
    consistency: Consistency = FULL,
) -> CheckPermissionRequest:
    req = CheckPermissionRequest(
        consistency=consistency, resource=obj(resource), permission=permission, subject=subj(subject)
    )
    if context:
        req.context.CopyFrom(struct(context))
    return req


_CHECK = {
    CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION: "has",
    CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION: "no",
    CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION: "conditional",
}
_NAMES = {
    "PERMISSIONSHIP_HAS_PERMISSION": "has",
    "PERMISSIONSHIP_NO_PERMISSION": "no",
    "PERMISSIONSHIP_CONDITIONAL_PERMISSION": "conditional",
    "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION": "has",
    "LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION": "conditional",
}

Item = tuple[str, str, str, dict[str, Any] | None]  # resource, permission, subject, context


def _lookup(p: int) -> str:
    return "conditional" if p == LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION else "has"


# -- transports -------------------------------------------------------------------------------


class GrpcWire:
    """The official client."""

    name = "grpc"

    def __init__(self, client: Any) -> None:
        self.c = client

    def definitions(self) -> list[str]:
        try:
            return [d.name for d in self.c.ReflectSchema(ReflectSchemaRequest(consistency=FULL)).definitions]
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return []
            raise

    def delete_type(self, resource_type: str) -> None:
        self.c.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type=resource_type))
        )

    def write_schema(self, text: str) -> str:
        return str(self.c.WriteSchema(WriteSchemaRequest(schema=text)).written_at.token)

    def write(self, rels: list[ZRel]) -> str:
        token = ""
        for start in range(0, len(rels), 1000):
            updates = [update(r) for r in rels[start : start + 1000]]
            token = self.c.WriteRelationships(WriteRelationshipsRequest(updates=updates)).written_at.token
        return token

    def check(self, item: Item) -> str:
        return _CHECK[self.c.CheckPermission(check_request(*item)).permissionship]

    def check_bulk(self, items: list[Item]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(items), 1000):
            req = CheckBulkPermissionsRequest(consistency=FULL)
            for resource, permission, subject, context in items[start : start + 1000]:
                item = CheckBulkPermissionsRequestItem(
                    resource=obj(resource), permission=permission, subject=subj(subject)
                )
                if context:
                    item.context.CopyFrom(struct(context))
                req.items.append(item)
            for pair in self.c.CheckBulkPermissions(req).pairs:
                if pair.HasField("error"):
                    out.append(f"error:{code_name(pair.error.code)}")
                else:
                    out.append(_CHECK[pair.item.permissionship])
        return out

    def lookup_resources(self, resource_type: str, permission: str, subject: str) -> dict[str, str]:
        req = LookupResourcesRequest(
            consistency=FULL, resource_object_type=resource_type, permission=permission, subject=subj(subject)
        )
        return {r.resource_object_id: _lookup(r.permissionship) for r in self.c.LookupResources(req)}

    def lookup_subjects(
        self, resource: str, permission: str, subject_type: str, subject_relation: str
    ) -> list[tuple[str, str, dict[str, str]]]:
        req = LookupSubjectsRequest(
            consistency=FULL,
            resource=obj(resource),
            permission=permission,
            subject_object_type=subject_type,
            optional_subject_relation=subject_relation,
        )
        return [
            (
                r.subject.subject_object_id,
                _lookup(r.subject.permissionship),
                {e.subject_object_id: _lookup(e.permissionship) for e in r.excluded_subjects},
            )
            for r in self.c.LookupSubjects(req)
        ]


def code_name(value: int) -> str:
    """The name of a numeric gRPC status code (``3`` -> ``INVALID_ARGUMENT``)."""
    return next(c.name for c in grpc.StatusCode if c.value[0] == value)


class HttpError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class HttpWire:
    """Plain HTTP/JSON requests to the gateway (urllib), bodies written by hand as
    grpc-gateway documents them (camelCase proto3 JSON)."""

    name = "http"

    def __init__(self, base: str, key: str | None) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def request(self, path: str, body: Any, *, raw: bool = False) -> Any:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise HttpError(exc.code, json.loads(exc.read().decode() or "null")) from None
        if raw:
            return text
        return json.loads(text)

    def stream(self, path: str, body: Any) -> list[Any]:
        """The ``result`` objects of a streamed answer (an ``error`` line raises)."""
        out = []
        for line in self.request(path, body, raw=True).splitlines():
            if not line.strip():
                continue
            value = json.loads(line)
            if "error" in value:
                raise HttpError(200, value["error"])
            out.append(value["result"])
        return out

    @staticmethod
    def j(message: Any) -> Any:
        """A message as the JSON a client would send."""
        return json_format.MessageToDict(message)

    def definitions(self) -> list[str]:
        try:
            return [d["name"] for d in self.request("/v1/schema/reflectschema", {}).get("definitions", [])]
        except HttpError as exc:
            if exc.status == 404:
                return []
            raise

    def delete_type(self, resource_type: str) -> None:
        self.request("/v1/relationships/delete", {"relationshipFilter": {"resourceType": resource_type}})

    def write_schema(self, text: str) -> str:
        return str(self.request("/v1/schema/write", {"schema": text})["writtenAt"]["token"])

    def write(self, rels: list[ZRel]) -> str:
        token = ""
        for start in range(0, len(rels), 1000):
            updates = [
                {"operation": "OPERATION_TOUCH", "relationship": self.j(rel(r))}
                for r in rels[start : start + 1000]
            ]
            token = self.request("/v1/relationships/write", {"updates": updates})["writtenAt"]["token"]
        return token

    def check(self, item: Item) -> str:
        resource, permission, subject, context = item
        body = self.j(check_request(resource, permission, subject, context))
        return _NAMES[self.request("/v1/permissions/check", body)["permissionship"]]

    def check_bulk(self, items: list[Item]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(items), 1000):
            body: dict[str, Any] = {"consistency": {"fullyConsistent": True}, "items": []}
            for resource, permission, subject, context in items[start : start + 1000]:
                item: dict[str, Any] = {
                    "resource": self.j(obj(resource)),
                    "permission": permission,
                    "subject": self.j(subj(subject)),
                }
                if context:
                    item["context"] = context
                body["items"].append(item)
            for pair in self.request("/v1/permissions/checkbulk", body)["pairs"]:
                if "error" in pair:
                    out.append(f"error:{code_name(pair['error']['code'])}")
                else:
                    out.append(_NAMES[pair["item"]["permissionship"]])
        return out

    def lookup_resources(self, resource_type: str, permission: str, subject: str) -> dict[str, str]:
        body = {
            "consistency": {"fullyConsistent": True},
            "resourceObjectType": resource_type,
            "permission": permission,
            "subject": self.j(subj(subject)),
        }
        return {
            r["resourceObjectId"]: _NAMES[r["permissionship"]]
            for r in self.stream("/v1/permissions/resources", body)
        }

    def lookup_subjects(
        self, resource: str, permission: str, subject_type: str, subject_relation: str
    ) -> list[tuple[str, str, dict[str, str]]]:
        body = {
            "consistency": {"fullyConsistent": True},
            "resource": self.j(obj(resource)),
            "permission": permission,
            "subjectObjectType": subject_type,
            "optionalSubjectRelation": subject_relation,
        }
        return [
            (
                r["subject"]["subjectObjectId"],
                _NAMES[r["subject"]["permissionship"]],
                {e["subjectObjectId"]: _NAMES[e["permissionship"]] for e in r.get("excludedSubjects", [])},
            )
            for r in self.stream("/v1/permissions/subjects", body)
        ]


def token_revision(token: str) -> int:
    """The revision inside a Zanzi token (``zz1_`` + base64 of ``<datastore id>|<revision>`` and
    a MAC): opaque to clients, read here only to check the order of Watch responses."""
    import base64

    body = token.removeprefix("zz1_")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return int(raw[:-16].decode().rpartition("|")[2])


def reset(wire: GrpcWire | HttpWire, schema: str) -> str:
    """Remove every relationship, then write ``schema``; the token of the schema write."""
    for name in wire.definitions():
        wire.delete_type(name)
    return wire.write_schema(schema)
