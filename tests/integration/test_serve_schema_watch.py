"""SchemaService (read, write, reflect, diff, computable / dependent relations), WatchService
and the bulk import / export calls, through a real server with the official client."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    ComputablePermissionsRequest,
    Consistency,
    DependentRelationsRequest,
    DiffSchemaRequest,
    ReadSchemaRequest,
    ReflectionSchemaFilter,
    ReflectSchemaRequest,
    RelationshipFilter,
    RelationshipUpdate,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import (
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
)
from authzed.api.v1.watch_service_pb2 import WATCH_KIND_INCLUDE_CHECKPOINTS, WATCH_KIND_INCLUDE_SCHEMA_UPDATES

from support.rpc import assert_fails, fails
from support.wire import GrpcWire, rel, reset, update

IA, FP = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION

SCHEMA = """\
/** a person */
definition user {}

caveat only_on(day string, allowed list<string>) {
    day in allowed
}

definition team {
    relation member: user | team#member
}

// a document
definition document {
    relation team: team
    // who reads it
    relation reader: user | user:* | team#member | user with only_on
    relation writer: user
    permission write = writer
    /** readers, writers and team members */
    permission read = reader + write + team->member
}
"""


@pytest.fixture(scope="module")
def schema_token(grpc_wire: GrpcWire) -> str:
    return reset(grpc_wire, SCHEMA)


# -- schema ----------------------------------------------------------------------------------


def test_read_schema_returns_the_text_and_its_token(client: Any, schema_token: str) -> None:
    r = client.ReadSchema(ReadSchemaRequest())
    assert r.schema_text == SCHEMA and r.read_at.token.startswith("zz1_")


def test_write_schema_errors(client: Any, schema_token: str) -> None:
    f = assert_fails(
        lambda: client.WriteSchema(WriteSchemaRequest(schema="definition user {")),
        IA,
        "ERROR_REASON_SCHEMA_PARSE_ERROR",
    )
    assert f.metadata.get("line") == "1"
    assert_fails(
        lambda: client.WriteSchema(WriteSchemaRequest(schema="definition doc {\n relation rel: nosuch\n}")),
        FP,
        "ERROR_REASON_SCHEMA_TYPE_ERROR",
    )
    client.WriteRelationships(WriteRelationshipsRequest(updates=[update("document:orphan#writer@user:a")]))
    without_writer = SCHEMA.replace("    relation writer: user\n", "").replace(
        "permission write = writer", "permission write = nil"
    )
    assert_fails(
        lambda: client.WriteSchema(WriteSchemaRequest(schema=without_writer)),
        IA,
        "ERROR_REASON_SCHEMA_TYPE_ERROR",
        "writer",
    )
    too_big = fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="x" * (4 * 1024 * 1024 + 1))))
    assert too_big.code in (IA, grpc.StatusCode.RESOURCE_EXHAUSTED)  # the schema limit, or gRPC's 4 MB frame
    assert client.ReadSchema(ReadSchemaRequest()).schema_text == SCHEMA


def test_reflect_schema(client: Any, schema_token: str) -> None:
    r = client.ReflectSchema(ReflectSchemaRequest(consistency=Consistency(fully_consistent=True)))
    assert r.read_at.token
    defs = {d.name: d for d in r.definitions}
    assert list(defs) == ["user", "team", "document"]
    assert defs["user"].comment == "/** a person */"
    doc = defs["document"]
    assert doc.comment == "// a document"
    assert [x.name for x in doc.relations] == ["team", "reader", "writer"]
    assert [x.name for x in doc.permissions] == ["write", "read"]
    reader = doc.relations[1]
    assert reader.comment == "// who reads it" and reader.parent_definition_name == "document"
    kinds = [
        (t.subject_definition_name, t.WhichOneof("typeref"), t.optional_caveat_name)
        for t in reader.subject_types
    ]
    assert kinds == [
        ("user", "is_terminal_subject", ""),
        ("user", "is_public_wildcard", ""),
        ("team", "optional_relation_name", ""),
        ("user", "is_terminal_subject", "only_on"),
    ]
    assert reader.subject_types[2].optional_relation_name == "member"
    [caveat] = r.caveats
    assert caveat.name == "only_on" and caveat.expression == "day in allowed"
    assert [(p.name, p.type) for p in caveat.parameters] == [("allowed", "list<string>"), ("day", "string")]


def test_reflect_schema_filters(client: Any, schema_token: str) -> None:
    def reflect(*filters: ReflectionSchemaFilter) -> Any:
        return client.ReflectSchema(ReflectSchemaRequest(optional_filters=list(filters)))

    r = reflect(ReflectionSchemaFilter(optional_definition_name_filter="doc"))
    assert [d.name for d in r.definitions] == ["document"] and not r.caveats
    r = reflect(
        ReflectionSchemaFilter(optional_definition_name_filter="document", optional_relation_name_filter="wr")
    )
    assert [x.name for x in r.definitions[0].relations] == ["writer"]
    r = reflect(ReflectionSchemaFilter(optional_caveat_name_filter="only"))
    assert not r.definitions and [c.name for c in r.caveats] == ["only_on"]
    assert_fails(
        lambda: reflect(ReflectionSchemaFilter(optional_relation_name_filter="x")),
        IA,
        "ERROR_REASON_INVALID_FILTER",
    )


def test_diff_schema(client: Any, schema_token: str) -> None:
    changed = (
        SCHEMA.replace("/** a person */\n", "")
        .replace("relation writer: user", "relation writer: user | team#member")
        .replace("permission write = writer", "permission write = writer + team->member")
        + "\ndefinition folder {}\n"
    )
    r = client.DiffSchema(DiffSchemaRequest(comparison_schema=changed))
    assert r.read_at.token
    kinds = sorted((d.WhichOneof("diff"), _name(getattr(d, d.WhichOneof("diff")))) for d in r.diffs)
    assert kinds == [
        ("definition_added", "folder"),
        ("definition_doc_comment_changed", "user"),
        ("permission_expr_changed", "write"),
        ("relation_subject_type_added", "writer"),
    ]
    assert client.DiffSchema(DiffSchemaRequest(comparison_schema=SCHEMA)).diffs == []
    assert_fails(lambda: client.DiffSchema(DiffSchemaRequest(comparison_schema="definition {")), IA)


def _name(x: Any) -> str:
    return x.relation.name if hasattr(x, "changed_subject_type") else x.name


def test_computable_permissions_and_dependent_relations(client: Any, schema_token: str) -> None:
    computable = client.ComputablePermissions(
        ComputablePermissionsRequest(definition_name="document", relation_name="writer")
    )
    assert [(p.definition_name, p.relation_name) for p in computable.permissions] == [
        ("document", "read"),
        ("document", "write"),
    ]
    dependent = client.DependentRelations(
        DependentRelationsRequest(definition_name="document", permission_name="read")
    )
    assert [(p.definition_name, p.relation_name, p.is_permission) for p in dependent.relations] == [
        ("document", "reader", False),
        ("document", "team", False),
        ("document", "write", True),
        ("document", "writer", False),
        ("team", "member", False),
    ]
    assert_fails(
        lambda: client.DependentRelations(
            DependentRelationsRequest(definition_name="document", permission_name="writer")
        ),
        IA,
    )
    assert_fails(
        lambda: client.ComputablePermissions(
            ComputablePermissionsRequest(definition_name="nosuch", relation_name="x")
        ),
        FP,
    )


# -- watch ------------------------------------------------------------------------------------


def _updates(response: Any) -> list[tuple[str, str]]:
    out = []
    for u in response.updates:
        r = u.relationship
        s = r.subject
        subject = f"{s.object.object_type}:{s.object.object_id}"
        text = f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{subject}"
        out.append(("TOUCH" if u.operation == RelationshipUpdate.OPERATION_TOUCH else "DELETE", text))
    return out


def _write(client: Any, *updates: Any) -> str:
    return str(client.WriteRelationships(WriteRelationshipsRequest(updates=list(updates))).written_at.token)


def test_watch_is_ordered_and_resumable(client: Any, schema_token: str) -> None:
    start = _write(client, update("document:w0#writer@user:a"))
    t1 = _write(client, update("document:w1#writer@user:a"), update("document:w1#reader@user:b"))
    t2 = _write(client, update("document:w1#reader@user:b", RelationshipUpdate.OPERATION_DELETE))
    t3 = _write(client, update("team:t1#member@user:c"))
    stream = client.Watch(WatchRequest(optional_start_cursor=ZedToken(token=start)), timeout=20)
    got = [next(stream) for _ in range(3)]
    stream.cancel()
    assert [r.changes_through.token for r in got] == [t1, t2, t3]
    assert _updates(got[0]) == [
        ("TOUCH", "document:w1#reader@user:b"),
        ("TOUCH", "document:w1#writer@user:a"),
    ] or sorted(_updates(got[0])) == sorted(
        [("TOUCH", "document:w1#writer@user:a"), ("TOUCH", "document:w1#reader@user:b")]
    )
    assert _updates(got[1]) == [("DELETE", "document:w1#reader@user:b")]
    # resume after the first response: the same later responses
    resumed = client.Watch(WatchRequest(optional_start_cursor=got[0].changes_through), timeout=20)
    again = [next(resumed) for _ in range(2)]
    resumed.cancel()
    assert [r.changes_through.token for r in again] == [t2, t3]


def test_watch_filters(client: Any, schema_token: str) -> None:
    start = _write(client, update("document:f0#writer@user:a"))
    _write(client, update("document:f1#writer@user:a"))
    t_team = _write(client, update("team:f#member@user:a"))
    _write(client, update("document:f2#reader@user:z"))
    t_reader = _write(client, update("document:f3#reader@user:y"))
    by_type = client.Watch(
        WatchRequest(optional_start_cursor=ZedToken(token=start), optional_object_types=["team"]), timeout=20
    )
    first = next(by_type)
    by_type.cancel()
    assert first.changes_through.token == t_team and _updates(first) == [("TOUCH", "team:f#member@user:a")]
    flt = RelationshipFilter(resource_type="document", optional_resource_id="f3")
    by_filter = client.Watch(
        WatchRequest(optional_start_cursor=ZedToken(token=start), optional_relationship_filters=[flt]),
        timeout=20,
    )
    first = next(by_filter)
    by_filter.cancel()
    assert first.changes_through.token == t_reader and _updates(first) == [
        ("TOUCH", "document:f3#reader@user:y")
    ]


def test_watch_streams_live_changes_and_checkpoints(client: Any, schema_token: str) -> None:
    stream = client.Watch(
        WatchRequest(
            optional_update_kinds=[WATCH_KIND_INCLUDE_CHECKPOINTS, WATCH_KIND_INCLUDE_SCHEMA_UPDATES]
        ),
        timeout=20,
    )
    received: list[Any] = []
    done = threading.Event()

    def consume() -> None:
        for r in stream:
            received.append(r)
            if any(not x.is_checkpoint for x in received):
                break
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    import time

    time.sleep(0.8)  # at least one checkpoint while nothing happens
    token = _write(client, update("document:live#writer@user:a"))
    assert done.wait(15)
    stream.cancel()
    assert received[0].is_checkpoint
    change = next(r for r in received if not r.is_checkpoint)
    assert change.changes_through.token == token and _updates(change) == [
        ("TOUCH", "document:live#writer@user:a")
    ]


def test_watch_errors(client: Any, schema_token: str) -> None:
    assert_fails(
        lambda: next(client.Watch(WatchRequest(optional_start_cursor=ZedToken(token="bogus")), timeout=5)), IA
    )
    assert_fails(lambda: next(client.Watch(WatchRequest(optional_object_types=["Bad-Type"]), timeout=5)), IA)


# -- bulk import / export ---------------------------------------------------------------------


def test_import_then_export_round_trip(client: Any, grpc_wire: GrpcWire) -> None:
    reset(grpc_wire, SCHEMA)
    texts = [f"document:bulk{i:04d}#reader@user:u{i % 37}" for i in range(2500)] + [
        'document:cav#reader@user:x[only_on:{"allowed":["mon"]}]',
        "team:t#member@team:u#member",
    ]

    def chunks() -> Any:
        for start in range(0, len(texts), 700):
            yield ImportBulkRelationshipsRequest(relationships=[rel(t) for t in texts[start : start + 700]])

    assert client.ImportBulkRelationships(chunks()).num_loaded == len(texts)
    whole = [
        r
        for page in client.ExportBulkRelationships(ExportBulkRelationshipsRequest())
        for r in page.relationships
    ]
    assert len(whole) == len(texts)
    assert {r.SerializeToString(deterministic=True) for r in whole} == {
        rel(t).SerializeToString(deterministic=True) for t in texts
    }
    # paged, resuming from each page's cursor
    seen: list[Any] = []
    cursor = None
    while True:
        req = ExportBulkRelationshipsRequest(optional_limit=400)
        if cursor is not None:
            req.optional_cursor.CopyFrom(cursor)
        pages = client.ExportBulkRelationships(req)
        first = next(pages, None)
        for _ in pages:
            pass
        if first is None:
            break
        assert len(first.relationships) <= 400
        seen += first.relationships
        cursor = first.after_result_cursor
    assert seen == whole
    only = ExportBulkRelationshipsRequest(
        optional_relationship_filter=RelationshipFilter(resource_type="team")
    )
    assert [len(p.relationships) for p in client.ExportBulkRelationships(only)] == [1]
    assert_fails(
        lambda: list(client.ExportBulkRelationships(ExportBulkRelationshipsRequest(optional_limit=10_001))),
        IA,
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
    )


def test_import_refuses_existing_and_invalid_relationships(client: Any, grpc_wire: GrpcWire) -> None:
    reset(grpc_wire, SCHEMA)
    client.ImportBulkRelationships(
        iter([ImportBulkRelationshipsRequest(relationships=[rel("document:i#writer@user:a")])])
    )
    assert_fails(
        lambda: client.ImportBulkRelationships(
            iter([ImportBulkRelationshipsRequest(relationships=[rel("document:i#writer@user:a")])])
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert_fails(
        lambda: client.ImportBulkRelationships(
            iter([ImportBulkRelationshipsRequest(relationships=[rel("document:j#writer@team:a")])])
        ),
        IA,
    )
