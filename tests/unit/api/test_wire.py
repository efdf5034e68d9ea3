"""The wire layer without a server: proto <-> model conversions, request validation from the
protos' rules, the status mapping, cursors and the gateway's routes."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from authzed.api.v1 import (
    CheckPermissionRequest,
    Consistency,
    ObjectReference,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WriteRelationshipsRequest,
    ZedToken,
)
from google.rpc import error_details_pb2

from zanzi import errors
from zanzi.api import convert
from zanzi.api.grpc.cursors import PageCursor, request_hash
from zanzi.api.grpc.status import HTTP_STATUS, to_rpc_status
from zanzi.api.grpc.validate import validate_request
from zanzi.api.http.routes import openapi_document, routes
from zanzi.model import (
    ELLIPSIS,
    Caveat,
    ConsistencyMode,
    ExpandSubject,
    ExpandTree,
    ObjectRef,
    SetOperation,
    SubjectRef,
)
from zanzi.model import Relationship as ZRel


def test_relationships_round_trip_with_caveat_and_expiration() -> None:
    rel = ZRel(
        ObjectRef("document", "a"),
        "viewer",
        SubjectRef("group", "eng", "member"),
        Caveat("on_network", {"cidr": "10.0.0.0/8", "n": 2}),
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    back = convert.relationship_from_proto(convert.relationship_to_proto(rel))
    assert back.key() == rel.key() and back.expiration == rel.expiration
    assert back.caveat is not None and dict(back.caveat.context) == {"cidr": "10.0.0.0/8", "n": 2}
    plain = convert.relationship_to_proto(ZRel.parse("document:a#viewer@user:b"))
    assert not plain.HasField("optional_caveat") and plain.subject.optional_relation == ""


def test_filters_ellipsis_and_consistency() -> None:
    any_relation = RelationshipFilter(
        resource_type="doc", optional_subject_filter=SubjectFilter(subject_type="user")
    )
    assert convert.filter_from_proto(any_relation).subject.relation is None  # type: ignore[union-attr]
    ellipsis = RelationshipFilter(
        resource_type="doc",
        optional_subject_filter=SubjectFilter(
            subject_type="user", optional_relation=SubjectFilter.RelationFilter()
        ),
    )
    f = convert.filter_from_proto(ellipsis)
    assert f.subject is not None and f.subject.relation == ELLIPSIS
    assert convert.filter_to_proto(f) == ellipsis
    with pytest.raises(errors.InvalidFilter):
        convert.filter_from_proto(RelationshipFilter())
    assert convert.consistency_from_proto(None) is None
    c = convert.consistency_from_proto(Consistency(at_exact_snapshot=ZedToken(token="t")))
    assert c is not None and c.mode is ConsistencyMode.AT_EXACT_SNAPSHOT and c.token == "t"


def test_expand_tree_to_proto() -> None:
    leaf = ExpandTree(
        ObjectRef("doc", "a"), "viewer", SetOperation.LEAF, subjects=(ExpandSubject(SubjectRef("user", "*")),)
    )
    tree = ExpandTree(ObjectRef("doc", "a"), "view", SetOperation.UNION, children=(leaf,))
    proto = convert.expand_tree_to_proto(tree)
    assert proto.intermediate.operation == proto.intermediate.OPERATION_UNION
    assert proto.intermediate.children[0].leaf.subjects[0].object.object_id == "*"


def test_validation_follows_the_proto_rules() -> None:
    ok = CheckPermissionRequest(
        consistency=Consistency(minimize_latency=True),
        resource=ObjectReference(object_type="document", object_id="a"),
        permission="view",
        subject=SubjectReference(object=ObjectReference(object_type="user", object_id="b")),
    )
    validate_request(ok)
    bad = CheckPermissionRequest()
    bad.CopyFrom(ok)
    bad.resource.object_id = "a b"
    with pytest.raises(errors.InvalidArgument, match=r"resource\.object_id: does not match regex pattern"):
        validate_request(bad)
    bad.CopyFrom(ok)
    bad.resource.object_id = "a\n"  # RE2's $ does not match before a final newline
    with pytest.raises(errors.InvalidArgument):
        validate_request(bad)
    bad.CopyFrom(ok)
    bad.ClearField("subject")
    with pytest.raises(errors.InvalidArgument, match="subject: value is required"):
        validate_request(bad)
    with pytest.raises(errors.InvalidArgument, match=r"updates\[0\]\.operation"):
        validate_request(WriteRelationshipsRequest(updates=[RelationshipUpdate()]))


def test_status_mapping() -> None:
    for code in errors.Code:
        exc = type("E", (errors.ZanziError,), {"code": code})("boom")
        assert HTTP_STATUS[grpc.StatusCode[errors.grpc_status_name(exc)]] == errors.http_status(exc)
    status = to_rpc_status(errors.UnknownDefinition("object definition `x` not found", definition="x"))
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "ERROR_REASON_UNKNOWN_DEFINITION",
        "authzed.com",
        {"definition": "x"},
    )
    hidden = to_rpc_status(KeyError("secret internals"))
    assert hidden.code == grpc.StatusCode.INTERNAL.value[0] and "secret" not in hidden.message
    assert to_rpc_status(errors.TooManyToDelete("x")).code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_cursors() -> None:
    h = request_hash(RelationshipFilter(resource_type="doc"))
    text = PageCursor("zz1_token", "pos", h).encode()
    assert PageCursor.decode(text, h) == PageCursor("zz1_token", "pos", h)
    with pytest.raises(errors.FailedPrecondition):
        PageCursor.decode(text, "another")
    with pytest.raises(errors.InvalidArgument):
        PageCursor.decode("%%%", h)


def test_routes_come_from_the_descriptors() -> None:
    table = routes()
    assert table[("POST", "/v1/permissions/check")].method == "CheckPermission"
    assert table[("POST", "/v1/watch")].server_streaming
    assert table[("POST", "/v1/relationships/importbulk")].client_streaming
    assert len(table) == 17
    assert set(openapi_document()["paths"]) == {path for _, path in table}
