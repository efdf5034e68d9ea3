"""The gateway's routes and its OpenAPI document, both read from the authzed.api.v1 descriptors
at runtime: each method's ``google.api.http`` annotation gives its path (``POST
/v1/permissions/check`` ...), exactly as SpiceDB's grpc-gateway serves them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from authzed.api.v1 import permission_service_pb2, schema_service_pb2, watch_service_pb2
from google.api import annotations_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

__all__ = ["SERVICES", "Route", "openapi_document", "routes"]

#: The services the gateway serves, by full name, with their descriptors.
SERVICES: dict[str, ServiceDescriptor] = {
    "authzed.api.v1.PermissionsService": permission_service_pb2.DESCRIPTOR.services_by_name[
        "PermissionsService"
    ],
    "authzed.api.v1.SchemaService": schema_service_pb2.DESCRIPTOR.services_by_name["SchemaService"],
    "authzed.api.v1.WatchService": watch_service_pb2.DESCRIPTOR.services_by_name["WatchService"],
}


@dataclass(frozen=True, slots=True)
class Route:
    """One RPC as an HTTP endpoint."""

    verb: str
    path: str
    service: str  # full name, e.g. authzed.api.v1.PermissionsService
    method: str  # e.g. CheckPermission
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool
    descriptor: MethodDescriptor


def _route(service: str, m: MethodDescriptor) -> Route | None:
    rule = m.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb is None or verb == "custom":
        return None
    return Route(
        verb.upper(),
        getattr(rule, verb),
        service,
        m.name,
        message_factory.GetMessageClass(m.input_type),
        message_factory.GetMessageClass(m.output_type),
        m.client_streaming,
        m.server_streaming,
        m,
    )


@functools.cache
def routes() -> dict[tuple[str, str], Route]:
    """(verb, path) -> route, for every annotated method of :data:`SERVICES`."""
    out: dict[tuple[str, str], Route] = {}
    for name, service in SERVICES.items():
        for m in service.methods:
            route = _route(name, m)
            if route is not None:
                out[(route.verb, route.path)] = route
    return out


# -- OpenAPI ----------------------------------------------------------------------------------

_SCALARS: dict[int, dict[str, str]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    # 64-bit integers are JSON strings in proto3's JSON mapping
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": {}},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": {},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class _Schemas:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def message(self, d: Any) -> dict[str, Any]:  # a Descriptor (python or upb)
        if d.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[d.full_name])
        if d.full_name not in self.schemas:
            self.schemas[d.full_name] = {}  # placeholder, for recursive messages
            properties = {f.json_name: self.field(f) for f in d.fields}
            self.schemas[d.full_name] = {"type": "object", "properties": properties}
        return _ref(d.full_name)

    def field(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.field(value)}
        if f.message_type is not None:
            schema = self.message(f.message_type)
        elif f.enum_type is not None:
            schema = {"type": "string", "enum": [v.name for v in f.enum_type.values]}
        else:
            schema = dict(_SCALARS.get(f.type, {"type": "string"}))
        return {"type": "array", "items": schema} if f.is_repeated else schema


def _stream_schema(schemas: _Schemas, route: Route) -> dict[str, Any]:
    name = f"StreamResultOf{route.response.DESCRIPTOR.full_name}"
    schemas.schemas[name] = {
        "type": "object",
        "description": "One line of the newline-delimited JSON stream.",
        "properties": {
            "result": schemas.message(route.response.DESCRIPTOR),
            "error": _ref("google.rpc.Status"),
        },
    }
    return _ref(name)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """An OpenAPI 3 document of every gateway route: paths, request and response schemas."""
    from google.rpc import status_pb2

    schemas = _Schemas()
    schemas.message(status_pb2.Status.DESCRIPTOR)
    paths: dict[str, Any] = {}
    for route in sorted(routes().values(), key=lambda r: r.path):
        response = (
            _stream_schema(schemas, route)
            if route.server_streaming
            else schemas.message(route.response.DESCRIPTOR)
        )
        media = "application/x-ndjson" if route.server_streaming else "application/json"
        body = schemas.message(route.request.DESCRIPTOR)
        paths.setdefault(route.path, {})[route.verb.lower()] = {
            "operationId": f"{route.service.rsplit('.', 1)[-1]}_{route.method}",
            "tags": [route.service.rsplit(".", 1)[-1]],
            "summary": f"{route.service}/{route.method}",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": body} if route.client_streaming else body
                    }
                },
            },
            "responses": {
                "200": {"description": "A successful response.", "content": {media: {"schema": response}}},
                "default": {
                    "description": "An error: the gRPC status code, message and details.",
                    "content": {"application/json": {"schema": _ref("google.rpc.Status")}},
                },
            },
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Zanzi: authzed.api.v1 over HTTP",
            "description": "SpiceDB's HTTP/JSON API (grpc-gateway paths and bodies), served by Zanzi.",
            "version": "1.0",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
