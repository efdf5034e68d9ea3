"""authzed.api.v1 PermissionsService and WatchService over :class:`~zanzi.api.service.Service`.

Each method is thin: convert the request (:mod:`zanzi.api.convert`), call one service method,
convert the answer. Validation of the request against its proto rules and the translation of
errors into statuses happen once, in :func:`zanzi.api.grpc.status.handler`. The HTTP gateway
calls these same methods.

Every response carries the token of the revision it was computed at; every request's
``consistency`` chooses that revision (absent: minimize latency). A paginated call's cursor pins
the following pages to the first page's revision (see :mod:`zanzi.api.grpc.cursors`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import grpc
from authzed.api.v1 import core_pb2 as core
from authzed.api.v1 import permission_service_pb2 as ps
from authzed.api.v1 import permission_service_pb2_grpc as ps_grpc
from authzed.api.v1 import watch_service_pb2 as ws
from authzed.api.v1 import watch_service_pb2_grpc as ws_grpc
from google.protobuf.message import Message

from zanzi.api import convert
from zanzi.api.grpc.cursors import PageCursor, request_hash
from zanzi.api.grpc.status import handler, to_rpc_status
from zanzi.api.grpc.validate import validate_request
from zanzi.api.results import LookupSubjectResult
from zanzi.api.service import CheckItem, Service
from zanzi.errors import InvalidArgument, Unavailable
from zanzi.model import Consistency, Relationship, RelationshipFilter

__all__ = ["Limits", "PermissionsServicer", "WatchServicer"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request limits, SpiceDB's defaults (``spicedb serve --max-*-limit``). A request asking
    for more is INVALID_ARGUMENT (``ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT``); no limit
    means everything, streamed."""

    read_relationships: int = 1000
    delete_relationships: int = 1000
    lookup_resources: int = 1000
    lookup_subjects: int = 1000
    export_batch: int = 10_000


def check_limit(requested: int, maximum: int) -> int | None:
    """``requested`` (0 meaning none) if it is within ``maximum``."""
    if requested > maximum:
        raise InvalidArgument(
            f"provided limit {requested} is greater than maximum allowed of {maximum}",
            reason="ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
            limit_provided=requested,
            maximum_limit_allowed=maximum,
        )
    return requested or None


def _token(token: str) -> core.ZedToken:
    return core.ZedToken(token=token)


def _page(request: Message, request_id: str) -> tuple[Consistency | None, str | None]:
    """The consistency and service position for a paginated request: its own consistency on
    the first page; the first page's revision, exactly, on the following ones."""
    consistency = convert.consistency_from_proto(getattr(request, "consistency", None))
    if not request.HasField("optional_cursor"):
        return consistency, None
    cursor = PageCursor.decode(request.optional_cursor.token, request_id)  # type: ignore[attr-defined]
    return Consistency.at_exact_snapshot(cursor.token), cursor.position or None


_PAGED = ("consistency", "optional_limit", "optional_cursor")


class PermissionsServicer(ps_grpc.PermissionsServiceServicer):
    """authzed.api.v1.PermissionsService."""

    def __init__(self, service: Service, limits: Limits | None = None) -> None:
        self.service = service
        self.limits = limits or Limits()

    # -- relationships ----------------------------------------------------------------------

    @handler
    def ReadRelationships(
        self, request: ps.ReadRelationshipsRequest, context: grpc.ServicerContext
    ) -> Iterator[ps.ReadRelationshipsResponse]:
        limit = check_limit(request.optional_limit, self.limits.read_relationships)
        f = convert.filter_from_proto(request.relationship_filter)
        request_id = request_hash(request, *_PAGED)
        consistency, position = _page(request, request_id)
        stream = self.service.read_relationships(f, consistency=consistency, limit=limit, cursor=position)
        read_at = _token(stream.token)
        for rel in stream:
            cursor = PageCursor(stream.token, stream.cursor or "", request_id)
            yield ps.ReadRelationshipsResponse(
                read_at=read_at,
                relationship=convert.relationship_to_proto(rel),
                after_result_cursor=core.Cursor(token=cursor.encode()),
            )

    @handler
    def WriteRelationships(
        self, request: ps.WriteRelationshipsRequest, context: grpc.ServicerContext
    ) -> ps.WriteRelationshipsResponse:
        updates = [convert.update_from_proto(u) for u in request.updates]
        preconditions = [convert.precondition_from_proto(p) for p in request.optional_preconditions]
        result = self.service.write(updates, preconditions=preconditions)
        return ps.WriteRelationshipsResponse(written_at=_token(result.token))

    @handler
    def DeleteRelationships(
        self, request: ps.DeleteRelationshipsRequest, context: grpc.ServicerContext
    ) -> ps.DeleteRelationshipsResponse:
        limit = check_limit(request.optional_limit, self.limits.delete_relationships)
        f = convert.filter_from_proto(request.relationship_filter)
        preconditions = [convert.precondition_from_proto(p) for p in request.optional_preconditions]
        result = self.service.delete_relationships(
            f,
            preconditions=preconditions,
            limit=limit,
            allow_partial=request.optional_allow_partial_deletions,
        )
        progress = (
            ps.DeleteRelationshipsResponse.DELETION_PROGRESS_PARTIAL
            if result.partial
            else ps.DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE
        )
        return ps.DeleteRelationshipsResponse(
            deleted_at=_token(result.token),
            deletion_progress=progress,
            relationships_deleted_count=result.deleted,
        )

    @handler
    def ImportBulkRelationships(
        self, request_iterator: Iterable[ps.ImportBulkRelationshipsRequest], context: grpc.ServicerContext
    ) -> ps.ImportBulkRelationshipsResponse:
        def relationships() -> Iterator[Relationship]:
            for request in request_iterator:
                validate_request(request)
                for rel in request.relationships:
                    yield convert.relationship_from_proto(rel)

        result = self.service.import_relationships(relationships())
        return ps.ImportBulkRelationshipsResponse(num_loaded=result.count)

    @handler
    def ExportBulkRelationships(
        self, request: ps.ExportBulkRelationshipsRequest, context: grpc.ServicerContext
    ) -> Iterator[ps.ExportBulkRelationshipsResponse]:
        batch_size = check_limit(request.optional_limit, self.limits.export_batch) or self.limits.export_batch
        base = None
        if request.HasField("optional_relationship_filter"):
            base = convert.filter_from_proto(request.optional_relationship_filter)
        request_id = request_hash(request, *_PAGED)
        consistency, position = _page(request, request_id)
        after_type, _, after = (position or "").partition("|")
        schema, token = self.service.compiled_schema(consistency)
        exact = Consistency.at_exact_snapshot(token)
        if base is not None and base.resource_type is not None:
            types = [base.resource_type]
        else:
            types = sorted(schema.definitions)
        batch: list[core.Relationship] = []
        last = ""
        for name in types:
            if after_type and name < after_type:
                continue
            f = dataclasses.replace(base, resource_type=name) if base else RelationshipFilter(name)
            start = after if after and name == after_type else None
            stream = self.service.read_relationships(f, consistency=exact, cursor=start)
            for rel in stream:
                batch.append(convert.relationship_to_proto(rel))
                last = f"{name}|{stream.cursor}"
                if len(batch) >= batch_size:
                    yield _export_page(batch, PageCursor(token, last, request_id))
                    batch = []
        if batch:
            yield _export_page(batch, PageCursor(token, last, request_id))

    # -- permissions ------------------------------------------------------------------------

    @handler
    def CheckPermission(
        self, request: ps.CheckPermissionRequest, context: grpc.ServicerContext
    ) -> ps.CheckPermissionResponse:
        result = self.service.check(
            convert.object_from_proto(request.resource),
            request.permission,
            convert.subject_from_proto(request.subject),
            consistency=convert.consistency_from_proto(request.consistency),
            context=convert.context_from_struct(request.context),
        )
        response = ps.CheckPermissionResponse(
            checked_at=_token(result.token),
            permissionship=convert.check_permissionship(result.permissionship),
        )
        if result.conditional:
            response.partial_caveat_info.missing_required_context.extend(result.missing_context)
        return response

    @handler
    def CheckBulkPermissions(
        self, request: ps.CheckBulkPermissionsRequest, context: grpc.ServicerContext
    ) -> ps.CheckBulkPermissionsResponse:
        items = [
            CheckItem(
                convert.object_from_proto(item.resource),
                item.permission,
                convert.subject_from_proto(item.subject),
                convert.context_from_struct(item.context),
            )
            for item in request.items
        ]
        results = self.service.check_bulk(
            items, consistency=convert.consistency_from_proto(request.consistency)
        )
        token = results[0].token if results else self.service.head_token()
        response = ps.CheckBulkPermissionsResponse(checked_at=_token(token))
        for item, result in zip(request.items, results, strict=True):
            pair = response.pairs.add()
            pair.request.CopyFrom(item)
            if result.error is not None:
                pair.error.CopyFrom(to_rpc_status(result.error))
                continue
            pair.item.permissionship = convert.check_permissionship(result.permissionship)
            if result.conditional:
                pair.item.partial_caveat_info.missing_required_context.extend(result.missing_context)
        return response

    @handler
    def ExpandPermissionTree(
        self, request: ps.ExpandPermissionTreeRequest, context: grpc.ServicerContext
    ) -> ps.ExpandPermissionTreeResponse:
        result = self.service.expand(
            convert.object_from_proto(request.resource),
            request.permission,
            consistency=convert.consistency_from_proto(request.consistency),
        )
        return ps.ExpandPermissionTreeResponse(
            expanded_at=_token(result.token), tree_root=convert.expand_tree_to_proto(result.tree)
        )

    @handler
    def LookupResources(
        self, request: ps.LookupResourcesRequest, context: grpc.ServicerContext
    ) -> Iterator[ps.LookupResourcesResponse]:
        limit = check_limit(request.optional_limit, self.limits.lookup_resources)
        request_id = request_hash(request, *_PAGED)
        consistency, position = _page(request, request_id)
        results = self.service.lookup_resources(
            request.resource_object_type,
            request.permission,
            convert.subject_from_proto(request.subject),
            consistency=consistency,
            context=convert.context_from_struct(request.context),
            limit=limit,
            cursor=position,
        )
        for r in results:
            response = ps.LookupResourcesResponse(
                looked_up_at=_token(r.token),
                resource_object_id=r.resource_id,
                permissionship=convert.lookup_permissionship(r.permissionship),
                after_result_cursor=core.Cursor(token=PageCursor(r.token, r.cursor, request_id).encode()),
            )
            if r.missing_context:
                response.partial_caveat_info.missing_required_context.extend(r.missing_context)
            yield response

    @handler
    def LookupSubjects(
        self, request: ps.LookupSubjectsRequest, context: grpc.ServicerContext
    ) -> Iterator[ps.LookupSubjectsResponse]:
        limit = check_limit(request.optional_concrete_limit, self.limits.lookup_subjects)
        request_id = request_hash(request, "consistency", "optional_concrete_limit", "optional_cursor")
        consistency, position = _page(request, request_id)
        results = self.service.lookup_subjects(
            convert.object_from_proto(request.resource),
            request.permission,
            request.subject_object_type,
            subject_relation=request.optional_subject_relation or None,
            consistency=consistency,
            context=convert.context_from_struct(request.context),
        )
        no_wildcards = request.wildcard_option == ps.LookupSubjectsRequest.WILDCARD_OPTION_EXCLUDE_WILDCARDS
        emitted = 0
        for r in results:
            if r.subject.is_wildcard:
                if no_wildcards or position is not None:  # the wildcard comes with the first page
                    continue
            elif position is not None and r.subject.id <= position:
                continue
            resolved = _resolved(r.subject.id, r)
            response = ps.LookupSubjectsResponse(
                looked_up_at=_token(r.token),
                subject=resolved,
                excluded_subjects=[_resolved(e.subject.id, e) for e in r.excluded],
                # the deprecated flat fields, still filled by SpiceDB
                subject_object_id=resolved.subject_object_id,
                excluded_subject_ids=[e.subject.id for e in r.excluded],
                permissionship=resolved.permissionship,
            )
            if r.missing_context:
                response.partial_caveat_info.CopyFrom(resolved.partial_caveat_info)
            if not r.subject.is_wildcard:
                cursor = PageCursor(r.token, r.subject.id, request_id)
                response.after_result_cursor.token = cursor.encode()
            yield response
            if not r.subject.is_wildcard:
                emitted += 1
                if limit is not None and emitted >= limit:
                    return


def _export_page(batch: list[core.Relationship], cursor: PageCursor) -> ps.ExportBulkRelationshipsResponse:
    return ps.ExportBulkRelationshipsResponse(
        after_result_cursor=core.Cursor(token=cursor.encode()), relationships=batch
    )


def _resolved(subject_id: str, r: LookupSubjectResult) -> ps.ResolvedSubject:
    out = ps.ResolvedSubject(
        subject_object_id=subject_id, permissionship=convert.lookup_permissionship(r.permissionship)
    )
    if r.missing_context:
        out.partial_caveat_info.missing_required_context.extend(r.missing_context)
    return out


#: How long one wait for changes lasts before a watch looks at its client and the server again.
WATCH_TICK = 0.5


class WatchServicer(ws_grpc.WatchServiceServicer):
    """authzed.api.v1.WatchService: the committed changes after a token, in revision order, one
    response per revision (``changes_through`` resumes after it). Ends, UNAVAILABLE, when the
    server shuts down; the client resumes from its last ``changes_through``."""

    def __init__(self, service: Service, stopping: threading.Event | None = None) -> None:
        self.service = service
        self.stopping = stopping or threading.Event()

    @handler
    def Watch(self, request: ws.WatchRequest, context: grpc.ServicerContext) -> Iterator[ws.WatchResponse]:
        filters = [convert.filter_from_proto(f) for f in request.optional_relationship_filters]
        kinds = set(request.optional_update_kinds)
        schema_updates = ws.WATCH_KIND_INCLUDE_SCHEMA_UPDATES in kinds
        checkpoints = ws.WATCH_KIND_INCLUDE_CHECKPOINTS in kinds
        if request.HasField("optional_start_cursor"):
            after = request.optional_start_cursor.token
        else:
            after = self.service.head_token()
        types = list(request.optional_object_types)
        while True:
            for event in self.service.watch(
                after, object_types=types, filters=filters, timeout=WATCH_TICK, poll_interval=WATCH_TICK / 2
            ):
                after = event.token
                updates = [convert.change_to_proto(c.kind, c.relationship) for c in event.changes]
                # relationship updates always come (as in SpiceDB); schema changes on request
                if updates or (event.schema_changed and schema_updates):
                    yield ws.WatchResponse(
                        updates=updates,
                        changes_through=_token(event.token),
                        schema_updated=event.schema_changed,
                    )
                if self._done(context):
                    break
            if self._done(context):
                if self.stopping.is_set():
                    raise Unavailable("the server is shutting down; resume from the last changes_through")
                return
            if checkpoints:
                yield ws.WatchResponse(changes_through=_token(after), is_checkpoint=True)

    def _done(self, context: grpc.ServicerContext) -> bool:
        return self.stopping.is_set() or not context.is_active()
