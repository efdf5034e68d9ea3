"""One surface over the three things measured: Zanzi embedded, Zanzi served, the SpiceDB engine.

A driver prepares calls (so the timed loop does nothing but call) and turns their responses
into answers: ``"has"``, ``"no"``, ``"cond"`` (caveat context missing) or ``"error: ..."``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import zanzi
from bench import protos
from bench.probes import CheckProbe, LookupProbe, SubjectsProbe
from bench.timing import rss_bytes

Call = Callable[[], Any]


class Driver(ABC):
    mode: str
    timeout: float | None = None  # deadline of one streamed lookup, where the mode has deadlines

    @abstractmethod
    def write_schema(self, text: str) -> None: ...

    @abstractmethod
    def load(self, relationships: Iterator[str]) -> int:
        """Load relationships the fastest way the mode offers; return how many."""

    @abstractmethod
    def check_call(self, probe: CheckProbe, consistency: str = "min") -> Call: ...

    @abstractmethod
    def answer(self, response: Any) -> str: ...

    @abstractmethod
    def bulk_call(self, probes: list[CheckProbe], consistency: str = "min") -> Call: ...

    @abstractmethod
    def bulk_answers(self, response: Any) -> list[str]: ...

    @abstractmethod
    def lookup_resources(self, probe: LookupProbe, consistency: str = "min") -> list[str]: ...

    @abstractmethod
    def lookup_subjects(self, probe: SubjectsProbe, consistency: str = "min") -> list[str]: ...

    @abstractmethod
    def write(self, relationship: str) -> str:
        """Touch one relationship; return the token of its revision."""

    @abstractmethod
    def check_at(self, probe: CheckProbe, token: str) -> str:
        """Answer ``probe`` at least as fresh as ``token``."""

    def for_thread(self) -> Driver:
        """A driver for another client thread (its own connection where there is one)."""
        return self

    def rss(self) -> int:
        """Resident memory of the process doing the work."""
        return rss_bytes()

    def close(self) -> None:
        return None


def error_answer(response: Any) -> str | None:
    if isinstance(response, BaseException):
        return f"error: {type(response).__name__}: {str(response)[:200]}"
    return None


# -- Zanzi, embedded --------------------------------------------------------------------------

_PERMISSIONSHIP = {
    zanzi.Permissionship.HAS_PERMISSION: "has",
    zanzi.Permissionship.NO_PERMISSION: "no",
    zanzi.Permissionship.CONDITIONAL_PERMISSION: "cond",
}


def _zconsistency(mode: str) -> zanzi.Consistency:
    if mode == "full":
        return zanzi.Consistency.fully_consistent()
    return zanzi.Consistency.minimize_latency()


class Embedded(Driver):
    """The Python API in this process (``zanzi.open``), references parsed once, up front."""

    def __init__(self, url: str) -> None:
        self.mode = "memory" if url.startswith("memory") else "sqlite"
        self.db = zanzi.open(url)

    def write_schema(self, text: str) -> None:
        self.db.write_schema(text)

    def load(self, relationships: Iterator[str]) -> int:
        return self.db.import_relationships(relationships).count

    def check_call(self, probe: CheckProbe, consistency: str = "min") -> Call:
        return functools.partial(
            self.db.check,
            zanzi.ObjectRef.parse(probe.resource),
            probe.permission,
            zanzi.SubjectRef.parse(probe.subject),
            consistency=_zconsistency(consistency),
            context=probe.context,
        )

    def answer(self, response: Any) -> str:
        return error_answer(response) or _PERMISSIONSHIP[response.permissionship]

    def bulk_call(self, probes: list[CheckProbe], consistency: str = "min") -> Call:
        items = [
            zanzi.CheckItem(
                zanzi.ObjectRef.parse(p.resource), p.permission, zanzi.SubjectRef.parse(p.subject), p.context
            )
            for p in probes
        ]
        return functools.partial(self.db.check_bulk, items, consistency=_zconsistency(consistency))

    def bulk_answers(self, response: Any) -> list[str]:
        return [
            f"error: {r.error}" if r.error is not None else _PERMISSIONSHIP[r.permissionship]
            for r in response
        ]

    def lookup_resources(self, probe: LookupProbe, consistency: str = "min") -> list[str]:
        results = self.db.lookup_resources(
            probe.resource_type,
            probe.permission,
            probe.subject,
            consistency=_zconsistency(consistency),
            context=probe.context,
        )
        return [r.resource_id for r in results]

    def lookup_subjects(self, probe: SubjectsProbe, consistency: str = "min") -> list[str]:
        results = self.db.lookup_subjects(
            probe.resource, probe.permission, probe.subject_type, consistency=_zconsistency(consistency)
        )
        return [r.subject.id for r in results]

    def write(self, relationship: str) -> str:
        return self.db.write_relationships([relationship])

    def check_at(self, probe: CheckProbe, token: str) -> str:
        r = self.db.check(
            probe.resource,
            probe.permission,
            probe.subject,
            consistency=zanzi.Consistency.at_least_as_fresh(token),
            context=probe.context,
        )
        return _PERMISSIONSHIP[r.permissionship]

    def close(self) -> None:
        self.db.close()


# -- over gRPC with the official client -------------------------------------------------------


class Client(Driver):
    """The official ``authzed`` client against a server (``zanzi serve``): one connection per
    driver, so client threads spread over the server's worker processes."""

    def __init__(self, target: str, key: str, server_pid: int | None = None, mode: str = "server") -> None:
        from authzed.api.v1 import InsecureClient

        self.mode = mode
        self.target, self.key, self.server_pid = target, key, server_pid
        self.client = InsecureClient(target, key, options=[("grpc.use_local_subchannel_pool", 1)])

    def for_thread(self) -> Client:
        return Client(self.target, self.key, self.server_pid, self.mode)

    def rss(self) -> int:
        from bench.timing import tree_rss_bytes

        return tree_rss_bytes(self.server_pid) if self.server_pid else 0

    def write_schema(self, text: str) -> None:
        from authzed.api.v1 import WriteSchemaRequest

        self.client.WriteSchema(WriteSchemaRequest(schema=text))

    def load(self, relationships: Iterator[str]) -> int:
        return int(self.client.ImportBulkRelationships(protos.import_requests(relationships)).num_loaded)

    def check_call(self, probe: CheckProbe, consistency: str = "min") -> Call:
        return functools.partial(self.client.CheckPermission, protos.check(probe, consistency))

    def answer(self, response: Any) -> str:
        return error_answer(response) or protos.ANSWERS[response.permissionship]

    def bulk_call(self, probes: list[CheckProbe], consistency: str = "min") -> Call:
        return functools.partial(self.client.CheckBulkPermissions, protos.check_bulk(probes, consistency))

    def bulk_answers(self, response: Any) -> list[str]:
        return protos.bulk_answers(response)

    def lookup_resources(self, probe: LookupProbe, consistency: str = "min") -> list[str]:
        req = protos.lookup_resources(probe, consistency)
        return [r.resource_object_id for r in self.client.LookupResources(req, timeout=self.timeout)]

    def lookup_subjects(self, probe: SubjectsProbe, consistency: str = "min") -> list[str]:
        req = protos.lookup_subjects(probe, consistency)
        return [r.subject.subject_object_id for r in self.client.LookupSubjects(req, timeout=self.timeout)]

    def write(self, relationship: str) -> str:
        return str(self.client.WriteRelationships(protos.touch([relationship])).written_at.token)

    def check_at(self, probe: CheckProbe, token: str) -> str:
        return protos.ANSWERS[self.client.CheckPermission(protos.check(probe, "fresh", token)).permissionship]

    def close(self) -> None:
        self.client.close() if hasattr(self.client, "close") else None
