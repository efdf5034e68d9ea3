"""What the service returns: plain frozen values that carry the token of the revision used."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from zanzi.errors import ZanziError
from zanzi.model import ExpandTree, ObjectRef, Permissionship, Relationship, SubjectRef
from zanzi.store.base import ChangeKind

__all__ = [
    "CheckResult",
    "DeleteResult",
    "ExpandResult",
    "LookupResourceResult",
    "LookupSubjectResult",
    "RelationshipChange",
    "RelationshipStream",
    "SchemaResult",
    "WatchEvent",
    "WriteResult",
]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to ``check(resource, permission, subject)``.

    ``missing_context`` names the caveat parameters whose absence made the answer
    CONDITIONAL. In a bulk check, an item that failed carries its ``error`` instead.
    """

    resource: ObjectRef
    permission: str
    subject: SubjectRef
    permissionship: Permissionship
    token: str
    missing_context: tuple[str, ...] = ()
    error: ZanziError | None = None
    dispatch_count: int = field(default=0, compare=False)

    @property
    def allowed(self) -> bool:
        """True only for HAS_PERMISSION (a CONDITIONAL answer is not an allowance)."""
        return self.permissionship is Permissionship.HAS_PERMISSION

    @property
    def conditional(self) -> bool:
        return self.permissionship is Permissionship.CONDITIONAL_PERMISSION

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class LookupResourceResult:
    resource_id: str
    permissionship: Permissionship
    token: str
    missing_context: tuple[str, ...] = ()
    cursor: str = ""

    @property
    def resource(self) -> str:
        return self.resource_id


@dataclass(frozen=True, slots=True)
class LookupSubjectResult:
    """A subject with the permission. A wildcard (``user:*``) lists the subjects it excludes."""

    subject: SubjectRef
    permissionship: Permissionship
    token: str
    missing_context: tuple[str, ...] = ()
    excluded: tuple[LookupSubjectResult, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpandResult:
    tree: ExpandTree
    token: str


@dataclass(frozen=True, slots=True)
class SchemaResult:
    text: str
    token: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    token: str
    count: int = 0


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """``partial`` is True when a limit stopped the delete before every match was gone."""

    token: str
    deleted: int
    partial: bool = False


@dataclass(frozen=True, slots=True)
class RelationshipChange:
    kind: ChangeKind
    relationship: Relationship

    def __str__(self) -> str:
        return f"{self.kind.name} {self.relationship}"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """The changes of one committed revision, and the token to resume after it."""

    changes: tuple[RelationshipChange, ...]
    token: str
    schema_changed: bool = False


class RelationshipStream:
    """An iterator of relationships read at one revision; ``token`` names that revision and
    ``cursor`` (after iteration stops at a limit) resumes after the last one returned."""

    def __init__(self, items: Iterator[Relationship], token: str, make_cursor: object) -> None:
        self._items = items
        self.token = token
        self.cursor: str | None = None
        self._make_cursor = make_cursor

    def __iter__(self) -> RelationshipStream:
        return self

    def __next__(self) -> Relationship:
        rel = next(self._items)
        if callable(self._make_cursor):
            self.cursor = self._make_cursor(rel)
        return rel
