"""The datastore contract: small roles that build on each other.

- :class:`Reader` reads relationships and the schema text at one snapshot revision.
- :class:`Writer` is a ``Reader`` over the live state of one write transaction, plus writes.
- :class:`Datastore` hands out snapshots and transactions, knows its revisions, its changelog
  and its garbage collection.

The store never imports the schema compiler or the engine: it keeps the schema as opaque text.
Backends translate their driver's exceptions into :mod:`zanzi.errors`; none escape.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

from zanzi.errors import InvalidFilter
from zanzi.model import ELLIPSIS, Operation, Relationship, RelationshipFilter, Update

__all__ = [
    "BULK_CHUNK",
    "DEFAULT_GC_WINDOW",
    "Capabilities",
    "Change",
    "ChangeKind",
    "ChangeSet",
    "Datastore",
    "IntRevision",
    "Reader",
    "RelationshipKey",
    "RelationshipQuery",
    "Revision",
    "Writer",
    "sort_key",
]

DEFAULT_GC_WINDOW = timedelta(hours=24)
#: Relationships per :meth:`Writer.write` call in the generic :meth:`Writer.bulk_create`.
BULK_CHUNK = 1000

#: The sort key of a relationship, used for ordered reads and cursors.
RelationshipKey = tuple[str, str, str, str, str, str]


def sort_key(rel: Relationship) -> RelationshipKey:
    """Order used by ordered reads: resource type, resource id, relation, subject type, id, rel."""
    r, s = rel.resource, rel.subject
    return (r.type, r.id, rel.relation, s.type, s.id, s.relation or ELLIPSIS)


# -- revisions --------------------------------------------------------------------------------


class Revision(abc.ABC):
    """A point in a datastore's history. Backends define their own; the contract gives only a
    total order, equality, hashing and a stable string form (embedded in consistency tokens)."""

    @abc.abstractmethod
    def __str__(self) -> str: ...

    @abc.abstractmethod
    def __lt__(self, other: Any) -> bool: ...

    @abc.abstractmethod
    def __eq__(self, other: object) -> bool: ...

    @abc.abstractmethod
    def __hash__(self) -> int: ...

    def __le__(self, other: Any) -> bool:
        return self == other or bool(self < other)

    def __gt__(self, other: Any) -> bool:
        return not self <= other

    def __ge__(self, other: Any) -> bool:
        return not self < other


@dataclass(frozen=True, slots=True, eq=False)
class IntRevision(Revision):
    """A revision that is a transaction counter (memory and SQLite backends)."""

    value: int

    def __str__(self) -> str:
        return str(self.value)

    def __lt__(self, other: Any) -> bool:
        if not isinstance(other, IntRevision):
            return NotImplemented
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntRevision) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"IntRevision({self.value})"


# -- queries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelationshipQuery:
    """What the engine and the service ask a reader for. Every field narrows the result.

    ``resource_ids`` / ``subject_ids`` hold several ids at once, so a caller can batch a whole
    frontier into one query. ``subject_relation=None`` matches any subject relation;
    ``subject_relation=ELLIPSIS`` matches only subjects without one.
    """

    resource_type: str | None = None
    resource_ids: tuple[str, ...] | None = None
    resource_id_prefix: str | None = None
    relation: str | None = None
    subject_type: str | None = None
    subject_ids: tuple[str, ...] | None = None
    subject_relation: str | None = None

    @classmethod
    def from_filter(cls, f: RelationshipFilter) -> RelationshipQuery:
        s = f.subject
        return cls(
            resource_type=f.resource_type,
            resource_ids=(f.resource_id,) if f.resource_id is not None else None,
            resource_id_prefix=f.resource_id_prefix,
            relation=f.relation,
            subject_type=s.type if s else None,
            subject_ids=(s.id,) if s is not None and s.id is not None else None,
            subject_relation=s.relation if s else None,
        )

    def is_empty(self) -> bool:
        """True when the query can match nothing (an empty id list)."""
        return self.resource_ids == () or self.subject_ids == ()

    def matches(self, rel: Relationship) -> bool:
        return self.matcher()(rel)

    def matcher(self) -> Callable[[Relationship], bool]:
        """A predicate equivalent to :meth:`matches`, with the id lists turned into sets once
        (for filtering many relationships)."""
        rtype, prefix, relation = self.resource_type, self.resource_id_prefix, self.relation
        stype, srel = self.subject_type, self.subject_relation
        rids = frozenset(self.resource_ids) if self.resource_ids is not None else None
        sids = frozenset(self.subject_ids) if self.subject_ids is not None else None

        def match(rel: Relationship) -> bool:
            r, s = rel.resource, rel.subject
            if rtype is not None and r.type != rtype:
                return False
            if rids is not None and r.id not in rids:
                return False
            if prefix is not None and not r.id.startswith(prefix):
                return False
            if relation is not None and rel.relation != relation:
                return False
            if stype is not None and s.type != stype:
                return False
            if sids is not None and s.id not in sids:
                return False
            if srel is not None:
                if srel == ELLIPSIS:
                    return s.relation is None
                return s.relation == srel
            return True

        return match

    def require_some_field(self) -> None:
        if (
            self.resource_type is None
            and self.resource_ids is None
            and self.resource_id_prefix is None
            and self.relation is None
            and self.subject_type is None
            and self.subject_ids is None
        ):
            raise InvalidFilter("a relationship query needs at least one field")


# -- changes ----------------------------------------------------------------------------------


class ChangeKind(enum.Enum):
    TOUCH = "touch"  # created, or replaced (caveat / expiration changed)
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Everything one committed transaction changed, in the changelog's order."""

    revision: Revision
    changes: tuple[Change, ...] = ()
    schema_changed: bool = False
    timestamp: datetime | None = field(default=None, compare=False)


# -- roles ------------------------------------------------------------------------------------


class Reader(abc.ABC):
    """Reads one consistent snapshot. Expired relationships (``expiration <= now`` of the
    snapshot) are never returned."""

    revision: Revision

    @abc.abstractmethod
    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        """Relationships matching ``q``. With ``ordered`` (implied by ``limit`` or ``after``)
        they come in :func:`sort_key` order, strictly after the key ``after``. No order is
        promised otherwise."""

    @abc.abstractmethod
    def read_schema(self) -> str | None:
        """The schema text as of this snapshot, or ``None`` if none has been written."""

    def exists(self, q: RelationshipQuery) -> bool:
        """True if at least one relationship matches."""
        for _ in self.query(q, limit=1):
            return True
        return False


class Writer(Reader):
    """The live state inside one write transaction, plus the writes. Reads see the
    transaction's own earlier writes. Nothing is visible to others until commit."""

    @abc.abstractmethod
    def write(self, updates: Sequence[Update]) -> None:
        """Apply updates in order. CREATE raises :class:`~zanzi.errors.RelationshipExists` if
        the relationship exists (by :meth:`~zanzi.model.Relationship.key`); TOUCH inserts or
        replaces; DELETE removes it if present.

        The built-in backends (and the conformance suite) also guarantee: one call is all or
        nothing (after an error none of its updates stay applied, and the transaction may go
        on); an expired relationship counts as absent for CREATE; a TOUCH identical to the live
        row (same caveat, context and expiration) changes nothing and reports no change."""

    @abc.abstractmethod
    def delete(self, q: RelationshipQuery, *, limit: int | None = None) -> list[Relationship]:
        """Delete the relationships matching ``q`` (at most ``limit``); return them."""

    @abc.abstractmethod
    def write_schema(self, text: str) -> None:
        """Replace the stored schema text."""

    def hold_commits(self) -> None:
        """From now until this transaction ends, no other transaction commits: what it reads
        from here on is the newest committed state right up to its own commit. Preconditions
        and schema changes call it before they check what they depend on. Backends whose write
        transactions never overlap (memory, SQLite) have nothing to do."""

    def bulk_create(self, relationships: Iterable[Relationship]) -> int:
        """CREATE every relationship, with :meth:`write`'s CREATE semantics (an expired one counts
        as absent); return how many were created. One that is live already raises
        :class:`~zanzi.errors.RelationshipExists`; relationships of earlier chunks may stay
        applied in the transaction then, so let the error roll the transaction back.

        The fast path for imports: backends with a bulk loader (PostgreSQL's ``COPY``) override
        it. This generic version calls :meth:`write` in chunks of :data:`BULK_CHUNK`."""
        count = 0
        chunk: list[Update] = []
        for rel in relationships:
            chunk.append(Update(Operation.CREATE, rel))
            if len(chunk) >= BULK_CHUNK:
                self.write(chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            self.write(chunk)
            count += len(chunk)
        return count


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; the conformance suite skips on these, never on names."""

    persistent: bool = False  # survives close() and reopen
    concurrent_writers: bool = False  # several processes may write at once
    watch: bool = True  # changes() and wait_for_change() work
    multi_process: bool = False  # several processes may share it


class Datastore(abc.ABC):
    """A relationship store with revisions.

    Guarantees every backend gives:

    - each transaction commits atomically and gets a new revision, greater than every
      revision committed before it;
    - ``snapshot(r)`` sees exactly the transactions committed at or before ``r``;
    - revisions within the GC window stay readable; older ones raise
      :class:`~zanzi.errors.RevisionGarbageCollected` from :meth:`check_revision`;
    - :meth:`changes` lists committed transactions in revision order, with no gaps.
    """

    capabilities: Capabilities = Capabilities()
    gc_window: timedelta = DEFAULT_GC_WINDOW

    @property
    @abc.abstractmethod
    def datastore_id(self) -> str:
        """A stable unique id of this datastore (the same for every process that opens it)."""

    @property
    @abc.abstractmethod
    def token_secret(self) -> bytes:
        """A random secret kept in the datastore, used to sign consistency tokens."""

    @abc.abstractmethod
    def head_revision(self) -> Revision:
        """The newest committed revision."""

    @abc.abstractmethod
    def parse_revision(self, text: str) -> Revision:
        """Turn ``str(revision)`` back into a revision; raise
        :class:`~zanzi.errors.MalformedToken` if it is not one of this backend's."""

    @abc.abstractmethod
    def check_revision(self, revision: Revision) -> None:
        """Raise :class:`~zanzi.errors.RevisionGarbageCollected` if ``revision`` is older than
        the GC window, :class:`~zanzi.errors.RevisionInFuture` if it was never committed.

        The built-in backends count a revision as inside the window while it was the newest
        at some instant of it: it is the head, or its successor committed at or after
        ``now - gc_window``. Those are exactly the snapshots garbage collection keeps."""

    @abc.abstractmethod
    def snapshot(self, revision: Revision, *, now: datetime | None = None) -> Reader:
        """A reader at ``revision``. ``now`` (default: the wall clock) decides which
        relationships have expired."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Writer]:
        """A write transaction: commits when the block exits normally (then
        ``writer.revision`` is the new revision), rolls back on an exception. A transaction
        that changes nothing still commits a revision."""

    @abc.abstractmethod
    def changes(self, after: Revision, *, limit: int | None = None) -> Iterator[ChangeSet]:
        """The transactions committed after ``after``, in revision order (at most ``limit``).
        Raises :class:`~zanzi.errors.RevisionGarbageCollected` if ``after`` is too old."""

    @abc.abstractmethod
    def wait_for_change(self, after: Revision, timeout: float) -> bool:
        """Block until a revision newer than ``after`` is committed or ``timeout`` seconds
        pass; return whether one is."""

    @abc.abstractmethod
    def garbage_collect(self, *, now: datetime | None = None) -> int:
        """Drop history older than the GC window (and expired relationships); return how
        many rows were removed."""

    def ready(self) -> bool:
        """True when the datastore can serve requests."""
        return True

    @abc.abstractmethod
    def close(self) -> None:
        """Release every resource. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
