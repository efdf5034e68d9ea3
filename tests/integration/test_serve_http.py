"""The HTTP/JSON gateway with plain HTTP requests: SpiceDB's grpc-gateway paths and JSON
bodies, its error and stream formats, the same keys as gRPC, and the OpenAPI document."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from typing import Any

import pytest
from authzed.api.v1 import permission_service_pb2, schema_service_pb2, watch_service_pb2
from google.api import annotations_pb2

from support.wire import HttpError, HttpWire, reset
from support.zanzi_server import ZanziServer

SCHEMA = """\
definition user {}

caveat is_tuesday(day string) {
    day == "tuesday"
}

definition doc {
    relation viewer: user | user:* | user with is_tuesday
    relation banned: user
    permission view = viewer - banned
}
"""

ALL_METHODS = [
    (service.full_name, m.name, m.GetOptions().Extensions[annotations_pb2.http].post)
    for module, name in (
        (permission_service_pb2, "PermissionsService"),
        (schema_service_pb2, "SchemaService"),
        (watch_service_pb2, "WatchService"),
    )
    for service in [module.DESCRIPTOR.services_by_name[name]]
    for m in service.methods
]


@pytest.fixture(scope="module")
def gw(http_wire: HttpWire) -> HttpWire:
    reset(http_wire, SCHEMA)
    http_wire.request(
        "/v1/relationships/write",
        {
            "updates": [
                {
                    "operation": "OPERATION_CREATE",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "readme"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "alice"}},
                    },
                },
                {
                    "operation": "OPERATION_TOUCH",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "public"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "*"}},
                    },
                },
                {
                    "operation": "OPERATION_TOUCH",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "public"},
                        "relation": "banned",
                        "subject": {"object": {"objectType": "user", "objectId": "mallory"}},
                    },
                },
                {
                    "operation": "OPERATION_TOUCH",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "tue"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "tim"}},
                        "optionalCaveat": {"caveatName": "is_tuesday"},
                    },
                },
            ]
        },
    )
    return http_wire


def post(base: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_every_method_has_its_grpc_gateway_path(server: ZanziServer, gw: HttpWire) -> None:
    assert len(ALL_METHODS) >= 17
    for service, method, path in ALL_METHODS:
        assert path.startswith("/v1/"), (service, method)
        if method == "Watch":
            continue  # streams until the client leaves; covered below
        status, text = post(gw.base, path, b"{}", {"Authorization": f"Bearer {gw.key}"})
        assert status != 404, (method, path, text)
        if status != 200:
            body = json.loads(text.splitlines()[0])
            body = body.get("error", body)
            assert {"code", "message", "details"} <= set(body), (method, text)


def test_check_and_errors(gw: HttpWire) -> None:
    body = {
        "consistency": {"fullyConsistent": True},
        "resource": {"objectType": "doc", "objectId": "readme"},
        "permission": "view",
        "subject": {"object": {"objectType": "user", "objectId": "alice"}},
    }
    r = gw.request("/v1/permissions/check", body)
    assert r["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION" and r["checkedAt"]["token"].startswith(
        "zz1_"
    )
    snake = gw.request(
        "/v1/permissions/check",
        {
            "resource": {"object_type": "doc", "object_id": "tue"},
            "permission": "view",
            "subject": {"object": {"object_type": "user", "object_id": "tim"}},
        },
    )
    assert snake["permissionship"] == "PERMISSIONSHIP_CONDITIONAL_PERMISSION"
    assert snake["partialCaveatInfo"]["missingRequiredContext"] == ["day"]
    with_context = gw.request(
        "/v1/permissions/check",
        {
            **body,
            "resource": {"objectType": "doc", "objectId": "tue"},
            "subject": {"object": {"objectType": "user", "objectId": "tim"}},
            "context": {"day": "tuesday"},
        },
    )
    assert with_context["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"
    with pytest.raises(HttpError) as e:
        gw.request("/v1/permissions/check", {**body, "resource": {"objectType": "nosuch", "objectId": "x"}})
    assert e.value.status == 400
    assert e.value.body["code"] == 9 and "nosuch" in e.value.body["message"]
    [info] = e.value.body["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "ERROR_REASON_UNKNOWN_DEFINITION" and info["domain"] == "authzed.com"
    with pytest.raises(HttpError) as e:
        gw.request(
            "/v1/permissions/check",
            {**body, "subject": {"object": {"objectType": "user", "objectId": "b@d"}}},
        )
    assert e.value.status == 400 and e.value.body["code"] == 3
    status, text = post(gw.base, "/v1/permissions/check", b"{not json", {"Authorization": f"Bearer {gw.key}"})
    assert status == 400 and json.loads(text)["code"] == 3
    with pytest.raises(HttpError) as e:
        gw.request(
            "/v1/relationships/write",
            {
                "updates": [
                    {
                        "operation": "OPERATION_CREATE",
                        "relationship": {
                            "resource": {"objectType": "doc", "objectId": "readme"},
                            "relation": "viewer",
                            "subject": {"object": {"objectType": "user", "objectId": "alice"}},
                        },
                    }
                ]
            },
        )
    assert e.value.status == 409 and e.value.body["code"] == 6


def test_keys(gw: HttpWire) -> None:
    body = b'{"relationshipFilter": {"resourceType": "doc"}}'
    status, text = post(gw.base, "/v1/relationships/read", body, {})
    assert status == 401 and json.loads(text)["code"] == 16
    status, text = post(gw.base, "/v1/relationships/read", body, {"Authorization": "Bearer wrong"})
    assert status == 403 and json.loads(text)["code"] == 7
    status, _ = post(gw.base, "/v1/relationships/read", body, {"Authorization": f"Bearer {gw.key}"})
    assert status == 200


def test_streams_are_newline_delimited_results(gw: HttpWire) -> None:
    text = gw.request(
        "/v1/relationships/read",
        {"consistency": {"fullyConsistent": True}, "relationshipFilter": {"resourceType": "doc"}},
        raw=True,
    )
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4 and all(set(line) == {"result"} for line in lines)
    assert lines[0]["result"]["relationship"]["resource"] == {"objectType": "doc", "objectId": "public"}
    assert lines[0]["result"]["afterResultCursor"]["token"]
    subjects = gw.stream(
        "/v1/permissions/subjects",
        {
            "resource": {"objectType": "doc", "objectId": "public"},
            "permission": "view",
            "subjectObjectType": "user",
        },
    )
    assert subjects[0]["subject"]["subjectObjectId"] == "*"
    assert [e["subjectObjectId"] for e in subjects[0]["excludedSubjects"]] == ["mallory"]
    # an error before the first result is the whole answer, with its HTTP status
    with pytest.raises(HttpError) as e:
        gw.request("/v1/relationships/read", {"relationshipFilter": {"resourceType": "nosuch"}})
    assert e.value.status == 400 and e.value.body["error"]["code"] == 9


def test_paging_lookup_resources_over_http(gw: HttpWire) -> None:
    gw.request(
        "/v1/relationships/write",
        {
            "updates": [
                {
                    "operation": "OPERATION_TOUCH",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": f"p{i:02d}"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "pat"}},
                    },
                }
                for i in range(12)
            ]
        },
    )
    body: dict[str, Any] = {
        "consistency": {"fullyConsistent": True},
        "resourceObjectType": "doc",
        "permission": "view",
        "subject": {"object": {"objectType": "user", "objectId": "pat"}},
    }
    whole = [r["resourceObjectId"] for r in gw.stream("/v1/permissions/resources", body)]
    seen: list[str] = []
    cursor = None
    while True:
        page = gw.stream(
            "/v1/permissions/resources",
            {**body, "optionalLimit": 5, **({"optionalCursor": cursor} if cursor else {})},
        )
        seen += [r["resourceObjectId"] for r in page]
        if len(page) < 5:
            break
        cursor = page[-1]["afterResultCursor"]
    assert seen == whole and len(whole) == 13


def test_import_bulk_reads_a_sequence_of_json_objects(gw: HttpWire) -> None:
    chunk = {
        "relationships": [
            {
                "resource": {"objectType": "doc", "objectId": f"imp{i}"},
                "relation": "viewer",
                "subject": {"object": {"objectType": "user", "objectId": "ian"}},
            }
            for i in range(3)
        ]
    }
    body = (json.dumps(chunk) + "\n" + json.dumps(chunk).replace("imp", "imq")).encode()
    status, text = post(gw.base, "/v1/relationships/importbulk", body, {"Authorization": f"Bearer {gw.key}"})
    assert status == 200 and json.loads(text)["numLoaded"] == "6"
    exported = gw.stream(
        "/v1/relationships/exportbulk",
        {"optionalRelationshipFilter": {"resourceType": "doc", "optionalResourceIdPrefix": "im"}},
    )
    assert sum(len(p["relationships"]) for p in exported) == 6


def test_watch_streams_over_http(gw: HttpWire, server: ZanziServer) -> None:
    start = gw.request(
        "/v1/relationships/write",
        {
            "updates": [
                {
                    "operation": "OPERATION_TOUCH",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "w0"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "wes"}},
                    },
                }
            ]
        },
    )["writtenAt"]
    later = gw.request(
        "/v1/relationships/write",
        {
            "updates": [
                {
                    "operation": "OPERATION_DELETE",
                    "relationship": {
                        "resource": {"objectType": "doc", "objectId": "w0"},
                        "relation": "viewer",
                        "subject": {"object": {"objectType": "user", "objectId": "wes"}},
                    },
                }
            ]
        },
    )["writtenAt"]
    req = urllib.request.Request(
        gw.base + "/v1/watch",
        data=json.dumps({"optionalStartCursor": start}).encode(),
        headers={"Authorization": f"Bearer {gw.key}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=20) as resp:
        first = json.loads(resp.readline())
    assert first["result"]["changesThrough"] == later
    assert first["result"]["updates"][0]["operation"] == "OPERATION_DELETE"


def test_openapi_document(gw: HttpWire) -> None:
    with urllib.request.urlopen(gw.base + "/openapi.json", timeout=10) as resp:
        doc = json.loads(resp.read())
    assert doc["openapi"].startswith("3.")
    assert {path for _, _, path in ALL_METHODS} == set(doc["paths"])
    check = doc["paths"]["/v1/permissions/check"]["post"]
    ref = check["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/authzed.api.v1.CheckPermissionRequest"
    props = doc["components"]["schemas"]["authzed.api.v1.CheckPermissionRequest"]["properties"]
    assert {"consistency", "resource", "permission", "subject", "context"} <= set(props)
    enum = doc["components"]["schemas"]["authzed.api.v1.CheckPermissionResponse"]["properties"][
        "permissionship"
    ]
    assert "PERMISSIONSHIP_HAS_PERMISSION" in enum["enum"]
    for schema in doc["components"]["schemas"].values():  # every reference resolves
        for value in json.dumps(schema).split('"$ref": "#/components/schemas/')[1:]:
            assert value.split('"')[0] in doc["components"]["schemas"]


def test_unknown_paths_and_health(gw: HttpWire) -> None:
    status, text = post(gw.base, "/v1/nothing/here", b"{}", {"Authorization": f"Bearer {gw.key}"})
    assert status == 404 and json.loads(text)["code"] == 5
    with urllib.request.urlopen(gw.base + "/healthz", timeout=10) as resp:
        assert json.loads(resp.read()) == {"status": "SERVING"}


def test_a_quiet_watch_ends_when_its_client_leaves(gw: HttpWire, server: ZanziServer) -> None:
    def finished_watches() -> float:
        with urllib.request.urlopen(f"http://{server.metrics_addr}/metrics", timeout=10) as resp:
            lines = resp.read().decode().splitlines()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith("zanzi_http_requests_total{") and 'path="/v1/watch"' in line
        )

    before = finished_watches()
    host, port = gw.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    # no change to report: the answer has not started (grpc-gateway also waits for the first event)
    conn.request("POST", "/v1/watch", body=b"{}", headers={"Authorization": f"Bearer {gw.key}"})
    time.sleep(0.5)
    conn.close()
    deadline = time.monotonic() + 10
    while finished_watches() == before:
        assert time.monotonic() < deadline, "the watch is still running after its client left"
        time.sleep(0.2)
