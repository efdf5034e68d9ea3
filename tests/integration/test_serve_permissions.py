"""PermissionsService through a real server with the official client: relationships (write,
read, delete), checks (single and bulk, every consistency mode, caveats), expand, lookups, with
cursors and limits, and the status code and ErrorInfo reason of every kind of bad request, as
SpiceDB answers them."""

from __future__ import annotations

import itertools
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionResponse,
    Consistency,
    Cursor,
    DeleteRelationshipsRequest,
    DeleteRelationshipsResponse,
    ExpandPermissionTreeRequest,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    Precondition,
    ReadRelationshipsRequest,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    WriteRelationshipsRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import (
    LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
    LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
)
from google.rpc import error_details_pb2

from support.rpc import assert_fails
from support.wire import FULL, GrpcWire, check_request, obj, reset, struct, subj, update

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
COND = CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION
CREATE, TOUCH, DELETE = (
    RelationshipUpdate.OPERATION_CREATE,
    RelationshipUpdate.OPERATION_TOUCH,
    RelationshipUpdate.OPERATION_DELETE,
)
IA, FP = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION

SCHEMA = """\
use expiration

definition user {}

caveat on_network(ip ipaddress, cidr string) {
    ip.in_cidr(cidr)
}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation owner: user
    relation viewer: user | user:* | group#member | user with on_network | user with expiration
    relation banned: user
    permission edit = owner
    permission view = (viewer + edit + folder->view) - banned
}
"""

BASE = [
    "group:eng#member@user:alice",
    "group:eng#member@group:ops#member",
    "group:ops#member@user:bob",
    "folder:root#viewer@group:eng#member",
    "folder:sub#parent@folder:root",
    "document:readme#folder@folder:sub",
    "document:readme#owner@user:carol",
    "document:public#viewer@user:*",
    "document:public#banned@user:mallory",
    'document:netdoc#viewer@user:dave[on_network:{"cidr":"10.0.0.0/8"}]',
    "document:old#viewer@user:erin[expiration:2000-01-01T00:00:00Z]",
    "document:future#viewer@user:erin[expiration:2999-01-01T00:00:00Z]",
] + [f"document:doc{i:03d}#viewer@user:frank" for i in range(25)]


@pytest.fixture(scope="module")
def loaded(grpc_wire: GrpcWire, client: Any) -> str:
    """The module's schema and relationships; the token of the write."""
    reset(grpc_wire, SCHEMA)
    return client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update(r) for r in BASE])
    ).written_at.token


def check(client: Any, resource: str, permission: str, subject: str, **kw: Any) -> Any:
    return client.CheckPermission(check_request(resource, permission, subject, **kw))


# -- checks ----------------------------------------------------------------------------------


def test_check_answers_with_the_token_of_its_revision(client: Any, loaded: str) -> None:
    fresh = Consistency(at_least_as_fresh=ZedToken(token=loaded))
    r = check(client, "document:readme", "view", "user:bob", consistency=fresh)
    assert r.permissionship == HAS and r.checked_at.token.startswith("zz1_")
    assert check(client, "document:readme", "edit", "user:bob").permissionship == NO
    assert check(client, "document:readme", "edit", "user:carol").permissionship == HAS
    assert check(client, "document:public", "view", "user:anyone").permissionship == HAS
    assert check(client, "document:public", "view", "user:mallory").permissionship == NO
    assert check(client, "document:old", "view", "user:erin").permissionship == NO  # expired
    assert check(client, "document:future", "view", "user:erin").permissionship == HAS


def test_caveat_without_context_is_conditional_and_names_the_missing_parameters(
    client: Any, loaded: str
) -> None:
    r = check(client, "document:netdoc", "view", "user:dave")
    assert r.permissionship == COND
    assert list(r.partial_caveat_info.missing_required_context) == ["ip"]
    assert (
        check(client, "document:netdoc", "view", "user:dave", context={"ip": "10.1.2.3"}).permissionship
        == HAS
    )
    assert (
        check(client, "document:netdoc", "view", "user:dave", context={"ip": "192.168.0.1"}).permissionship
        == NO
    )


def test_every_consistency_mode(client: Any, loaded: str) -> None:
    grant = client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update("document:cmode#viewer@user:gina")])
    ).written_at
    revoke = client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update("document:cmode#viewer@user:gina", DELETE)])
    ).written_at
    ask = ("document:cmode", "view", "user:gina")
    assert check(client, *ask, consistency=Consistency(minimize_latency=True)).permissionship == NO
    assert check(client, *ask, consistency=Consistency(fully_consistent=True)).permissionship == NO
    assert check(client, *ask, consistency=Consistency(at_least_as_fresh=revoke)).permissionship == NO
    assert check(client, *ask, consistency=Consistency(at_least_as_fresh=grant)).permissionship == NO  # newer
    old = check(client, *ask, consistency=Consistency(at_exact_snapshot=grant))
    assert old.permissionship == HAS and old.checked_at.token == grant.token
    r = client.CheckPermission(
        check_request(*ask).__class__(resource=obj(ask[0]), permission="view", subject=subj(ask[2]))
    )
    assert r.permissionship == NO  # no consistency at all: minimize latency


def test_check_errors(client: Any, loaded: str) -> None:
    assert_fails(
        lambda: check(client, "nosuch:x", "view", "user:a"),
        FP,
        "ERROR_REASON_UNKNOWN_DEFINITION",
        "object definition `nosuch` not found",
    )
    assert_fails(
        lambda: check(client, "document:x", "nosuch", "user:a"),
        FP,
        "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
        "relation/permission `nosuch` not found under definition `document`",
    )
    assert_fails(
        lambda: check(client, "document:x", "view", "user:*"),
        IA,
        "ERROR_REASON_WILDCARD_NOT_ALLOWED",
        "wildcard",
    )
    assert_fails(lambda: check(client, "document:x", "view", "user:b@d"), IA, match="object_id")
    assert_fails(lambda: check(client, "Document:x", "view", "user:a"), IA, match="object_type")
    bad_token = Consistency(at_least_as_fresh=ZedToken(token="not-a-token"))
    assert_fails(lambda: check(client, "document:x", "view", "user:a", consistency=bad_token), IA)
    foreign = Consistency(at_exact_snapshot=ZedToken(token="zz1_" + "A" * 60))
    assert_fails(lambda: check(client, "document:x", "view", "user:a", consistency=foreign), IA)
    assert_fails(lambda: check(client, "document:netdoc", "view", "user:dave", context={"ip": 12}), IA)


def test_depth_limit_is_resource_exhausted(client: Any, loaded: str) -> None:
    chain = [f"group:deep{i}#member@group:deep{i + 1}#member" for i in range(60)] + [
        "group:deep60#member@user:zed"
    ]
    client.WriteRelationships(WriteRelationshipsRequest(updates=[update(r) for r in chain]))
    assert_fails(
        lambda: check(client, "group:deep0", "member", "user:zed"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED",
    )
    assert check(client, "group:deep40", "member", "user:zed").permissionship == HAS


def test_check_bulk_answers_per_item_with_per_item_errors(client: Any, loaded: str) -> None:
    items = [
        CheckBulkPermissionsRequestItem(
            resource=obj("document:readme"), permission="view", subject=subj("user:bob")
        ),
        CheckBulkPermissionsRequestItem(
            resource=obj("document:readme"), permission="edit", subject=subj("user:bob")
        ),
        CheckBulkPermissionsRequestItem(
            resource=obj("nosuch:x"), permission="view", subject=subj("user:bob")
        ),
        CheckBulkPermissionsRequestItem(
            resource=obj("document:netdoc"), permission="view", subject=subj("user:dave")
        ),
        CheckBulkPermissionsRequestItem(
            resource=obj("document:netdoc"),
            permission="view",
            subject=subj("user:dave"),
            context=struct({"ip": "10.9.9.9"}),
        ),
        CheckBulkPermissionsRequestItem(
            resource=obj("document:x"), permission="view", subject=subj("user:*")
        ),
    ]
    r = client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=FULL, items=items))
    assert r.checked_at.token
    assert [p.request for p in r.pairs] == items
    assert [p.item.permissionship for p in r.pairs[:2]] == [HAS, NO]
    error = r.pairs[2].error
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0] and "nosuch" in error.message
    info = error_details_pb2.ErrorInfo()
    assert error.details[0].Unpack(info) and info.reason == "ERROR_REASON_UNKNOWN_DEFINITION"
    assert r.pairs[3].item.permissionship == COND
    assert list(r.pairs[3].item.partial_caveat_info.missing_required_context) == ["ip"]
    assert r.pairs[4].item.permissionship == HAS
    assert r.pairs[5].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_check_bulk_limit(client: Any, loaded: str) -> None:
    item = CheckBulkPermissionsRequestItem(
        resource=obj("document:readme"), permission="view", subject=subj("user:bob")
    )
    ok = client.CheckBulkPermissions(CheckBulkPermissionsRequest(items=[item] * 10_000))
    assert len(ok.pairs) == 10_000
    assert_fails(
        lambda: client.CheckBulkPermissions(CheckBulkPermissionsRequest(items=[item] * 10_001)),
        IA,
        "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST",
        "check count of 10001 is greater than maximum allowed of 10000",
    )


# -- expand -----------------------------------------------------------------------------------


def test_expand_returns_the_permission_tree(client: Any, loaded: str) -> None:
    r = client.ExpandPermissionTree(
        ExpandPermissionTreeRequest(consistency=FULL, resource=obj("document:public"), permission="view")
    )
    assert r.expanded_at.token
    root = r.tree_root
    assert root.expanded_object == obj("document:public") and root.expanded_relation == "view"
    assert root.intermediate.operation == root.intermediate.OPERATION_EXCLUSION

    def leaves(node: Any) -> list[tuple[str, list[str]]]:
        if node.HasField("leaf"):
            subjects = [f"{s.object.object_type}:{s.object.object_id}" for s in node.leaf.subjects]
            return [(node.expanded_relation, subjects)]
        return [x for c in node.intermediate.children for x in leaves(c)]

    found = dict(leaves(root))
    assert found["viewer"] == ["user:*"] and found["banned"] == ["user:mallory"]
    assert_fails(
        lambda: client.ExpandPermissionTree(
            ExpandPermissionTreeRequest(resource=obj("document:x"), permission="nope")
        ),
        FP,
        "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
    )


# -- lookups ----------------------------------------------------------------------------------


def lookup_resources(client: Any, subject: str, **kw: Any) -> list[Any]:
    req = LookupResourcesRequest(
        consistency=FULL, resource_object_type="document", permission="view", subject=subj(subject), **kw
    )
    return list(client.LookupResources(req))


def test_lookup_resources_with_conditional_results(client: Any, loaded: str) -> None:
    got = {r.resource_object_id: r for r in lookup_resources(client, "user:dave")}
    assert set(got) == {"public", "netdoc"}
    assert got["public"].permissionship == LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
    assert got["netdoc"].permissionship == LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
    assert list(got["netdoc"].partial_caveat_info.missing_required_context) == ["ip"]
    assert all(r.looked_up_at.token for r in got.values())
    with_context = lookup_resources(client, "user:dave", context=struct({"ip": "10.0.0.1"}))
    assert {r.resource_object_id: r.permissionship for r in with_context} == {
        "public": LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
        "netdoc": LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
    }
    assert {r.resource_object_id for r in lookup_resources(client, "user:bob")} == {"readme", "public"}


@pytest.mark.parametrize("page", [1, 3, 7, 1000])
def test_lookup_resources_pages_to_completion_equal_the_whole(client: Any, loaded: str, page: int) -> None:
    whole = [r.resource_object_id for r in lookup_resources(client, "user:frank")]
    assert len(whole) == 26  # 25 documents and the public one
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        kw: dict[str, Any] = {"optional_limit": page}
        if cursor is not None:
            kw["optional_cursor"] = cursor
        batch = lookup_resources(client, "user:frank", **kw)
        assert len(batch) <= page
        seen += [r.resource_object_id for r in batch]
        if len(batch) < page:
            break
        cursor = batch[-1].after_result_cursor
    assert seen == whole


def test_lookup_resources_limits_and_cursors(client: Any, loaded: str) -> None:
    assert_fails(
        lambda: lookup_resources(client, "user:frank", optional_limit=1001),
        IA,
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
        "provided limit 1001 is greater than maximum allowed of 1000",
    )
    assert len(lookup_resources(client, "user:frank", optional_limit=1000)) == 26
    assert_fails(
        lambda: lookup_resources(client, "user:frank", optional_cursor=Cursor(token="!!")),
        IA,
        "ERROR_REASON_INVALID_CURSOR",
    )
    other = lookup_resources(client, "user:bob", optional_limit=1)[0].after_result_cursor
    assert_fails(
        lambda: lookup_resources(client, "user:frank", optional_cursor=other),
        FP,
        "ERROR_REASON_INVALID_CURSOR",
    )
    assert_fails(lambda: lookup_resources(client, "user:*"), IA)


def lookup_subjects(client: Any, resource: str, **kw: Any) -> list[Any]:
    req = LookupSubjectsRequest(
        consistency=FULL, resource=obj(resource), permission="view", subject_object_type="user", **kw
    )
    return list(client.LookupSubjects(req))


def test_lookup_subjects_wildcards_exclusions_and_conditions(client: Any, loaded: str) -> None:
    public = lookup_subjects(client, "document:public")
    assert [r.subject.subject_object_id for r in public] == ["*"]
    assert [e.subject_object_id for e in public[0].excluded_subjects] == ["mallory"]
    assert public[0].looked_up_at.token
    assert (
        lookup_subjects(
            client, "document:public", wildcard_option=LookupSubjectsRequest.WILDCARD_OPTION_EXCLUDE_WILDCARDS
        )
        == []
    )
    readme = {r.subject.subject_object_id for r in lookup_subjects(client, "document:readme")}
    assert readme == {"alice", "bob", "carol"}
    net = lookup_subjects(client, "document:netdoc")
    assert [(r.subject.subject_object_id, r.subject.permissionship) for r in net] == [
        ("dave", LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION)
    ]
    assert list(net[0].subject.partial_caveat_info.missing_required_context) == ["ip"]
    groups = LookupSubjectsRequest(
        consistency=FULL,
        resource=obj("document:readme"),
        permission="view",
        subject_object_type="group",
        optional_subject_relation="member",
    )
    assert {r.subject.subject_object_id for r in client.LookupSubjects(groups)} == {"eng", "ops"}


def test_lookup_subjects_pages(client: Any, loaded: str) -> None:
    whole = [r.subject.subject_object_id for r in lookup_subjects(client, "document:readme")]
    first = lookup_subjects(client, "document:readme", optional_concrete_limit=2)
    assert [r.subject.subject_object_id for r in first] == whole[:2]
    rest = lookup_subjects(client, "document:readme", optional_cursor=first[-1].after_result_cursor)
    assert [r.subject.subject_object_id for r in rest] == whole[2:]


# -- relationships ----------------------------------------------------------------------------


def read(client: Any, flt: RelationshipFilter, **kw: Any) -> list[Any]:
    return list(
        client.ReadRelationships(ReadRelationshipsRequest(consistency=FULL, relationship_filter=flt, **kw))
    )


def text(r: Any) -> str:
    rel = r.relationship
    s = rel.subject
    sub = f"{s.object.object_type}:{s.object.object_id}" + (
        f"#{s.optional_relation}" if s.optional_relation else ""
    )
    return f"{rel.resource.object_type}:{rel.resource.object_id}#{rel.relation}@{sub}"


def test_read_relationships_filters(client: Any, loaded: str) -> None:
    members = read(client, RelationshipFilter(resource_type="group", optional_resource_id="eng"))
    assert [text(r) for r in members] == ["group:eng#member@group:ops#member", "group:eng#member@user:alice"]
    assert all(r.read_at.token for r in members)
    only_users = RelationshipFilter(
        resource_type="group", optional_subject_filter=SubjectFilter(subject_type="group")
    )
    assert [text(r) for r in read(client, only_users) if "deep" not in text(r)] == [
        "group:eng#member@group:ops#member"
    ]
    ellipsis = SubjectFilter(subject_type="user", optional_relation=SubjectFilter.RelationFilter(relation=""))
    assert (
        len(
            read(
                client,
                RelationshipFilter(
                    resource_type="group", optional_resource_id="eng", optional_subject_filter=ellipsis
                ),
            )
        )
        == 1
    )
    prefixed = read(client, RelationshipFilter(resource_type="document", optional_resource_id_prefix="doc01"))
    assert len(prefixed) == 10
    caveated = read(client, RelationshipFilter(resource_type="document", optional_resource_id="netdoc"))
    assert caveated[0].relationship.optional_caveat.caveat_name == "on_network"
    assert dict(caveated[0].relationship.optional_caveat.context) == {"cidr": "10.0.0.0/8"}
    future = read(client, RelationshipFilter(resource_type="document", optional_resource_id="future"))
    assert future[0].relationship.optional_expires_at.seconds > 0
    assert read(client, RelationshipFilter(resource_type="document", optional_resource_id="old")) == []


@pytest.mark.parametrize("page", [1, 4, 1000])
def test_read_relationships_pages_to_completion_equal_the_whole(client: Any, loaded: str, page: int) -> None:
    flt = RelationshipFilter(resource_type="document")
    whole = [text(r) for r in read(client, flt)]
    seen: list[str] = []
    cursor = None
    while True:
        kw: dict[str, Any] = {"optional_limit": page}
        if cursor is not None:
            kw["optional_cursor"] = cursor
        batch = read(client, flt, **kw)
        seen += [text(r) for r in batch]
        if len(batch) < page:
            break
        cursor = batch[-1].after_result_cursor
    assert seen == whole and len(whole) > 30


def test_a_cursor_reads_the_first_pages_snapshot(client: Any, loaded: str) -> None:
    flt = RelationshipFilter(resource_type="document", optional_resource_id_prefix="snap")
    client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update(f"document:snap{i}#owner@user:a") for i in range(4)])
    )
    first = read(client, flt, optional_limit=2)
    client.WriteRelationships(WriteRelationshipsRequest(updates=[update("document:snap9#owner@user:a")]))
    rest = read(client, flt, optional_cursor=first[-1].after_result_cursor)
    assert [text(r) for r in rest] == ["document:snap2#owner@user:a", "document:snap3#owner@user:a"]
    assert rest[0].read_at.token == first[0].read_at.token


def test_read_relationships_errors(client: Any, loaded: str) -> None:
    assert_fails(lambda: read(client, RelationshipFilter()), IA, "ERROR_REASON_INVALID_FILTER")
    assert_fails(
        lambda: read(client, RelationshipFilter(resource_type="nosuch")),
        FP,
        "ERROR_REASON_UNKNOWN_DEFINITION",
    )
    assert_fails(
        lambda: read(client, RelationshipFilter(resource_type="document"), optional_limit=1001),
        IA,
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
    )
    assert_fails(
        lambda: read(client, RelationshipFilter(resource_type="document"), optional_cursor=Cursor(token="x")),
        IA,
        "ERROR_REASON_INVALID_CURSOR",
    )


def write(client: Any, *updates: Any, preconditions: list[Any] = ()) -> Any:  # type: ignore[assignment]
    return client.WriteRelationships(
        WriteRelationshipsRequest(updates=list(updates), optional_preconditions=preconditions)
    )


def test_write_create_touch_delete(client: Any, loaded: str) -> None:
    r = write(client, update("document:w1#viewer@user:hal", CREATE))
    assert r.written_at.token
    assert_fails(
        lambda: write(client, update("document:w1#viewer@user:hal", CREATE)),
        grpc.StatusCode.ALREADY_EXISTS,
        "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP",
    )
    write(client, update("document:w1#viewer@user:hal", TOUCH))
    gone = write(client, update("document:w1#viewer@user:hal", DELETE))
    assert (
        check(
            client,
            "document:w1",
            "view",
            "user:hal",
            consistency=Consistency(at_least_as_fresh=gone.written_at),
        ).permissionship
        == NO
    )
    write(client, update("document:w1#viewer@user:hal", DELETE))  # deleting what is absent is fine


def test_write_errors(client: Any, loaded: str) -> None:
    assert_fails(
        lambda: write(client, update("document:w2#view@user:a")),
        IA,
        "ERROR_REASON_CANNOT_UPDATE_PERMISSION",
        "permission",
    )
    assert_fails(
        lambda: write(client, update("document:w2#banned@user:*")), IA, "ERROR_REASON_INVALID_SUBJECT_TYPE"
    )
    assert_fails(
        lambda: write(client, update("document:w2#viewer@folder:a")), IA, "ERROR_REASON_INVALID_SUBJECT_TYPE"
    )
    assert_fails(
        lambda: write(client, update("nosuch:w2#viewer@user:a")), FP, "ERROR_REASON_UNKNOWN_DEFINITION"
    )
    assert_fails(
        lambda: write(client, update("document:w2#nosuch@user:a")),
        FP,
        "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
    )
    assert_fails(
        lambda: write(
            client, update("document:w2#viewer@user:a"), update("document:w2#viewer@user:a", DELETE)
        ),
        IA,
        "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP",
    )
    assert_fails(
        lambda: write(client, *[update(f"document:w{i}#viewer@user:a") for i in range(1001)]),
        IA,
        "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
    )
    no_op = RelationshipUpdate(relationship=update("document:w2#viewer@user:a").relationship)
    assert_fails(lambda: write(client, no_op), IA, match="operation")
    assert_fails(lambda: write(client, update('document:w2#viewer@user:a[on_network:{"cidr":5}]')), IA)
    assert read(client, RelationshipFilter(resource_type="document", optional_resource_id_prefix="w")) == []


def test_write_preconditions(client: Any, loaded: str) -> None:
    must = Precondition(
        operation=Precondition.OPERATION_MUST_MATCH,
        filter=RelationshipFilter(resource_type="document", optional_resource_id="readme"),
    )
    must_not = Precondition(
        operation=Precondition.OPERATION_MUST_NOT_MATCH,
        filter=RelationshipFilter(resource_type="document", optional_resource_id="readme"),
    )
    write(client, update("document:pre1#viewer@user:a"), preconditions=[must])
    f = assert_fails(
        lambda: write(client, update("document:pre2#viewer@user:a"), preconditions=[must_not]),
        FP,
        "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE",
    )
    assert "precondition" in f.message
    empty = Precondition(operation=Precondition.OPERATION_MUST_MATCH, filter=RelationshipFilter())
    assert_fails(lambda: write(client, update("document:pre2#viewer@user:a"), preconditions=[empty]), IA)
    assert_fails(
        lambda: write(client, update("document:pre2#viewer@user:a"), preconditions=[must] * 1001),
        IA,
        "ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST",
    )
    assert [
        text(r)
        for r in read(client, RelationshipFilter(resource_type="document", optional_resource_id_prefix="pre"))
    ] == ["document:pre1#viewer@user:a"]


def test_delete_relationships_with_limits_and_partial_deletion(client: Any, loaded: str) -> None:
    write(client, *[update(f"document:del{i}#viewer@user:ivan") for i in range(5)])
    flt = RelationshipFilter(
        resource_type="document",
        optional_subject_filter=SubjectFilter(subject_type="user", optional_subject_id="ivan"),
    )
    assert_fails(
        lambda: client.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=flt, optional_limit=2)
        ),
        IA,
        "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE",
    )
    assert_fails(
        lambda: client.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=flt, optional_limit=1001)
        ),
        IA,
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
    )
    assert_fails(
        lambda: client.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=RelationshipFilter())
        ),
        IA,
        "ERROR_REASON_INVALID_FILTER",
    )
    partial = client.DeleteRelationships(
        DeleteRelationshipsRequest(
            relationship_filter=flt, optional_limit=2, optional_allow_partial_deletions=True
        )
    )
    assert partial.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_PARTIAL
    assert partial.relationships_deleted_count == 2 and partial.deleted_at.token
    rest = client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=flt))
    assert rest.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE
    assert rest.relationships_deleted_count == 3
    assert read(client, flt) == []
    must = Precondition(operation=Precondition.OPERATION_MUST_MATCH, filter=flt)
    assert_fails(
        lambda: client.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=flt, optional_preconditions=[must])
        ),
        FP,
        "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE",
    )


def test_every_answer_carries_a_token(client: Any, loaded: str) -> None:
    tokens = [
        check(client, "document:readme", "view", "user:bob").checked_at.token,
        read(client, RelationshipFilter(resource_type="group"))[0].read_at.token,
        lookup_resources(client, "user:bob")[0].looked_up_at.token,
        lookup_subjects(client, "document:readme")[0].looked_up_at.token,
        client.ExpandPermissionTree(
            ExpandPermissionTreeRequest(resource=obj("document:readme"), permission="view")
        ).expanded_at.token,
    ]
    assert all(t.startswith("zz1_") for t in tokens)
    assert len(set(itertools.chain(tokens))) >= 1
