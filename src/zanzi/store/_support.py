"""Helpers shared by the built-in backends: clocks, time encoding, integer revisions,
relationship normalisation, change-set assembly and option parsing.

Private to :mod:`zanzi.store`; third-party backends should depend on :mod:`zanzi.store.base` only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from zanzi.errors import (
    FailedPrecondition,
    InvalidArgument,
    InvalidContext,
    InvalidFilter,
    MalformedToken,
    RelationshipExists,
)
from zanzi.model import ELLIPSIS, Caveat, Relationship, SubjectRef
from zanzi.store.base import (
    DEFAULT_GC_WINDOW,
    Change,
    ChangeKind,
    ChangeSet,
    IntRevision,
    RelationshipKey,
    Revision,
    sort_key,
)

__all__ = [
    "Clock",
    "as_utc",
    "assemble_changeset",
    "check_limit",
    "check_not_nested",
    "decode_context",
    "dedupe",
    "describe_key",
    "encode_context",
    "exists_error",
    "from_micros",
    "int_revision",
    "parse_int_revision",
    "resolve_clock",
    "resolve_gc_window",
    "same_attributes",
    "normalize",
    "system_clock",
    "to_micros",
]

#: A source of "now": an aware datetime. Backends take one as the ``clock`` option so that
#: tests (and the conformance suite) can control time.
Clock = Callable[[], datetime]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
T = TypeVar("T")


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch (naive datetimes are UTC)."""
    return (as_utc(value) - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    """The inverse of :func:`to_micros`: an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=value)


# -- revisions --------------------------------------------------------------------------------


def int_revision(revision: Revision) -> int:
    """The counter of an :class:`IntRevision`; :class:`MalformedToken` for any other kind."""
    if not isinstance(revision, IntRevision):
        raise MalformedToken(f"revision {revision!r} was not issued by this datastore")
    return revision.value


def parse_int_revision(text: str) -> IntRevision:
    """Parse the canonical decimal form of an :class:`IntRevision` (no sign, no leading zeros)."""
    if (
        not isinstance(text, str)
        or not text.isascii()
        or not text.isdigit()
        or (len(text) > 1 and text[0] == "0")
        or len(text) > 19
    ):
        raise MalformedToken(f"malformed revision {text!r}")
    return IntRevision(int(text))


# -- relationships ----------------------------------------------------------------------------


def encode_context(context: Mapping[str, Any] | None) -> str | None:
    """Canonical JSON of a caveat context (sorted keys), ``None`` when empty."""
    if not context:
        return None
    try:
        return json.dumps(dict(context), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidContext(f"caveat context is not JSON-serialisable: {exc}") from None


def decode_context(text: str | None) -> dict[str, Any]:
    """The inverse of :func:`encode_context`."""
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):  # pragma: no cover - we only ever store objects
        raise InvalidContext("stored caveat context is not a JSON object")
    return value


def normalize(rel: Relationship) -> Relationship:
    """The form every built-in backend stores and returns.

    A subject relation of ``"..."`` becomes ``None``; the expiration becomes an aware UTC
    datetime (naive ones are taken as UTC); the caveat context is copied through JSON (so it
    reads back exactly as stored, and later mutation of the caller's dict changes nothing).
    Raises :class:`~zanzi.errors.InvalidContext` if the context is not JSON-serialisable.
    """
    subject = rel.subject
    changed = False
    if subject.relation == ELLIPSIS:
        subject = SubjectRef(subject.type, subject.id, None)
        changed = True
    caveat = rel.caveat
    if caveat is not None:
        caveat = Caveat(caveat.name, decode_context(encode_context(caveat.context)))
        changed = True
    expiration = rel.expiration
    if expiration is not None and (expiration.tzinfo is not UTC):
        expiration = as_utc(expiration)
        changed = True
    if not changed:
        return rel
    return Relationship(rel.resource, rel.relation, subject, caveat, expiration)


def describe_key(rel: Relationship) -> str:
    """``resource#relation@subject``: the relationship's identity, for error messages."""
    return f"{rel.resource}#{rel.relation}@{rel.subject}"


def exists_error(rel: Relationship) -> RelationshipExists:
    """The error for a CREATE of a relationship that is already live."""
    key = describe_key(rel)
    return RelationshipExists(f"relationship {key} already exists", relationship=key)


def same_attributes(a: Relationship, b: Relationship) -> bool:
    """True when two relationships with the same key also carry the same caveat, context and
    expiration (so a TOUCH of one over the other changes nothing)."""
    ca, cb = a.caveat, b.caveat
    if (ca is None) != (cb is None):
        return False
    if ca is not None and cb is not None and (ca.name != cb.name or dict(ca.context) != dict(cb.context)):
        return False
    return a.expiration == b.expiration


def assemble_changeset(
    revision: Revision,
    timestamp: datetime | None,
    schema_changed: bool,
    created: Iterable[Relationship],
    deleted: Iterable[Relationship],
) -> ChangeSet:
    """Derive one revision's change set from its MVCC rows.

    A row created at the revision is a TOUCH; a row deleted at the revision is a DELETE unless
    a row with the same key was created at the same revision (a replacement), in which case the
    TOUCH of the new row says it all. Changes come in :func:`~zanzi.store.base.sort_key` order.
    """
    touched: dict[RelationshipKey, Relationship] = {sort_key(rel): rel for rel in created}
    changes: list[tuple[RelationshipKey, Change]] = [
        (key, Change(ChangeKind.TOUCH, rel)) for key, rel in touched.items()
    ]
    seen_deleted: set[RelationshipKey] = set()
    for rel in deleted:
        key = sort_key(rel)
        if key in touched or key in seen_deleted:
            continue
        seen_deleted.add(key)
        changes.append((key, Change(ChangeKind.DELETE, rel)))
    changes.sort(key=lambda item: item[0])
    return ChangeSet(revision, tuple(change for _, change in changes), schema_changed, timestamp)


def check_not_nested(owner: int | None) -> None:
    """Raise :class:`~zanzi.errors.FailedPrecondition` if the calling thread is ``owner``, the
    thread holding a datastore's write lock (a nested transaction would deadlock)."""
    if owner is not None and owner == threading.get_ident():
        raise FailedPrecondition(
            "this thread already has a write transaction open on this datastore; "
            "nested transactions are not supported"
        )


# -- small utilities --------------------------------------------------------------------------


def dedupe(values: Sequence[T]) -> list[T]:
    """The values in first-seen order without repeats."""
    return list(dict.fromkeys(values))


def check_limit(limit: int | None) -> None:
    """Raise :class:`~zanzi.errors.InvalidFilter` for a negative limit."""
    if limit is not None and limit < 0:
        raise InvalidFilter(f"limit must be zero or more, got {limit}")


def resolve_gc_window(value: object) -> timedelta:
    """Accept a :class:`~datetime.timedelta` or a number of seconds (as a number or a string,
    as it comes from a URL query); ``None`` means the default window."""
    if value is None:
        return DEFAULT_GC_WINDOW
    if isinstance(value, timedelta):
        window = value
    else:
        try:
            window = timedelta(seconds=float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidArgument(f"gc_window must be a timedelta or seconds, got {value!r}") from None
    if window < timedelta(0):
        raise InvalidArgument(f"gc_window must not be negative, got {window}")
    return window


def resolve_clock(value: object) -> Clock:
    """The ``clock`` option: ``None`` for the wall clock, or a callable returning a datetime."""
    if value is None:
        return system_clock
    if not callable(value):
        raise InvalidArgument(f"clock must be a callable returning a datetime, got {value!r}")
    clock: Clock = value

    def aware_clock() -> datetime:
        return as_utc(clock())

    return aware_clock
