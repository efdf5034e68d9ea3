"""Zanzi's one exception hierarchy and the table that maps it to wire statuses.

Every error Zanzi raises on purpose derives from :class:`ZanziError`. Each family carries a
neutral :class:`Code`; transports translate a code to a gRPC status or an HTTP status through
:func:`grpc_status_name` and :func:`http_status`, which walk the exception's MRO, so a new
subclass never needs a transport change.

The tree::

    ZanziError
    ├── InvalidArgument                       INVALID_ARGUMENT / 400
    │   ├── SchemaSyntaxError                 (line, column, excerpt)
    │   ├── InvalidRelationship               bad relationship / reference string or field
    │   ├── InvalidFilter
    │   ├── InvalidContext                    bad caveat context
    │   ├── RelationshipNotAllowed            subject type not allowed on the relation
    │   ├── TooManyUpdates                    more updates than a write allows
    │   └── TooManyChecks                     more items than a bulk check allows
    ├── FailedPrecondition                    FAILED_PRECONDITION / 400
    │   ├── SchemaValidationError             (definition, relation, line, column)
    │   ├── UnknownDefinition
    │   ├── UnknownRelation
    │   ├── UnknownCaveat
    │   ├── PreconditionFailed                a write precondition did not hold
    │   │   └── TooManyToDelete               more matches than a delete's limit (INVALID_ARGUMENT)
    │   ├── SchemaInUse                       would orphan relationships (INVALID_ARGUMENT)
    │   └── NotSupported                      a feature this version does not implement yet
    ├── NotFound                              NOT_FOUND / 404
    │   └── SchemaNotFound
    ├── Conflict                              ABORTED / 409
    │   ├── WriteConflict                     retryable
    │   └── RelationshipExists                ALREADY_EXISTS / 409
    ├── InvalidRevision                       OUT_OF_RANGE / 400
    │   ├── MalformedToken                    undecodable or tampered (INVALID_ARGUMENT)
    │   ├── ForeignToken                      from another datastore (INVALID_ARGUMENT)
    │   ├── RevisionGarbageCollected          older than the GC window
    │   └── RevisionInFuture                  newer than anything this datastore has
    ├── LimitExceeded                         RESOURCE_EXHAUSTED / 429
    │   └── MaxDepthExceeded
    ├── Unavailable                           UNAVAILABLE / 503
    │   └── ReadOnly
    ├── Unauthenticated                       UNAUTHENTICATED / 401 (no credentials)
    ├── PermissionDenied                      PERMISSION_DENIED / 403 (credentials refused)
    └── InternalError                         INTERNAL / 500
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "Code",
    "Conflict",
    "FailedPrecondition",
    "ForeignToken",
    "InternalError",
    "InvalidArgument",
    "InvalidContext",
    "InvalidFilter",
    "InvalidRelationship",
    "InvalidRevision",
    "LimitExceeded",
    "MalformedToken",
    "MaxDepthExceeded",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PreconditionFailed",
    "ReadOnly",
    "RelationshipExists",
    "RelationshipNotAllowed",
    "RevisionGarbageCollected",
    "RevisionInFuture",
    "SchemaInUse",
    "SchemaNotFound",
    "SchemaSyntaxError",
    "SchemaValidationError",
    "TooManyChecks",
    "TooManyToDelete",
    "TooManyUpdates",
    "Unauthenticated",
    "Unavailable",
    "UnknownCaveat",
    "UnknownDefinition",
    "UnknownRelation",
    "WriteConflict",
    "ZanziError",
    "exit_code",
    "grpc_status_name",
    "http_status",
]


class Code(enum.Enum):
    """Neutral error codes; the only thing transports look at."""

    INVALID_ARGUMENT = "invalid_argument"
    FAILED_PRECONDITION = "failed_precondition"
    NOT_FOUND = "not_found"
    ABORTED = "aborted"
    ALREADY_EXISTS = "already_exists"
    OUT_OF_RANGE = "out_of_range"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    INTERNAL = "internal"


# The one table from Code to the wire: (gRPC status name, HTTP status).
_WIRE: dict[Code, tuple[str, int]] = {
    Code.INVALID_ARGUMENT: ("INVALID_ARGUMENT", 400),
    Code.FAILED_PRECONDITION: ("FAILED_PRECONDITION", 400),
    Code.NOT_FOUND: ("NOT_FOUND", 404),
    Code.ABORTED: ("ABORTED", 409),
    Code.ALREADY_EXISTS: ("ALREADY_EXISTS", 409),
    Code.OUT_OF_RANGE: ("OUT_OF_RANGE", 400),
    Code.RESOURCE_EXHAUSTED: ("RESOURCE_EXHAUSTED", 429),
    Code.UNAVAILABLE: ("UNAVAILABLE", 503),
    Code.UNAUTHENTICATED: ("UNAUTHENTICATED", 401),
    Code.PERMISSION_DENIED: ("PERMISSION_DENIED", 403),
    Code.INTERNAL: ("INTERNAL", 500),
}


class ZanziError(Exception):
    """Root of every error Zanzi raises on purpose.

    ``message`` is for humans. Structured details (``definition``, ``relation``, ``line``,
    ``column``...) are keyword attributes, listed in :attr:`details`; code must read those, not
    parse the message. ``reason`` is SpiceDB's ErrorReason name where one applies.
    """

    code: Code = Code.INTERNAL
    reason: str | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        reason = details.pop("reason", None)
        if reason is not None:
            self.reason = reason
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}
        for key, value in self.details.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.details.items())
        return f"{type(self).__name__}({self.message!r}{extra})"


# -- invalid input ---------------------------------------------------------------------------


class InvalidArgument(ZanziError):
    """The request itself is malformed."""

    code = Code.INVALID_ARGUMENT


class SchemaSyntaxError(InvalidArgument):
    """The schema text does not parse. Carries ``line``, ``column`` (1-based) and ``excerpt``."""

    reason = "ERROR_REASON_SCHEMA_PARSE_ERROR"


class InvalidRelationship(InvalidArgument):
    """A relationship, object or subject reference is malformed."""


class InvalidFilter(InvalidArgument):
    """A relationship filter (or a cursor) is malformed or empty where it may not be."""

    reason = "ERROR_REASON_INVALID_FILTER"


class InvalidContext(InvalidArgument):
    """Caveat context is malformed, of the wrong type or too large."""

    reason = "ERROR_REASON_CAVEAT_PARAMETER_TYPE_ERROR"


class RelationshipNotAllowed(InvalidArgument):
    """The relation does not allow this subject type (or wildcard, caveat, expiration), or the
    relationship names a permission rather than a relation."""

    reason = "ERROR_REASON_INVALID_SUBJECT_TYPE"


# -- valid input that does not fit the schema or the data --------------------------------------


class FailedPrecondition(ZanziError):
    """The request is well formed but does not fit the schema or the current data."""

    code = Code.FAILED_PRECONDITION


class SchemaValidationError(FailedPrecondition):
    """The schema parses but is not valid (unknown names, duplicates, bad arrows...)."""

    reason = "ERROR_REASON_SCHEMA_TYPE_ERROR"


class UnknownDefinition(FailedPrecondition):
    """An object type that the schema does not define."""

    reason = "ERROR_REASON_UNKNOWN_DEFINITION"


class UnknownRelation(FailedPrecondition):
    """A relation or permission that the definition does not have."""

    reason = "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"


class UnknownCaveat(FailedPrecondition):
    """A caveat that the schema does not define."""

    reason = "ERROR_REASON_UNKNOWN_CAVEAT"


class PreconditionFailed(FailedPrecondition):
    """A write's precondition (must / must not match) did not hold."""

    reason = "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE"


class TooManyToDelete(PreconditionFailed):
    """A delete with a limit matched more relationships than the limit and partial deletion was
    not allowed. (SpiceDB answers this one with INVALID_ARGUMENT, so it does here too.)"""

    code = Code.INVALID_ARGUMENT
    reason = "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE"


class SchemaInUse(FailedPrecondition):
    """A schema change would leave existing relationships without a meaning. (SpiceDB answers
    this one with INVALID_ARGUMENT, so it does here too.)"""

    code = Code.INVALID_ARGUMENT
    reason = "ERROR_REASON_SCHEMA_TYPE_ERROR"


class NotSupported(FailedPrecondition):
    """A feature that this version of Zanzi parses but does not implement yet."""


# -- missing things ---------------------------------------------------------------------------


class NotFound(ZanziError):
    """The thing asked for does not exist."""

    code = Code.NOT_FOUND


class SchemaNotFound(NotFound):
    """No schema has been written yet."""


# -- conflicts --------------------------------------------------------------------------------


class Conflict(ZanziError):
    """The write collided with the current state."""

    code = Code.ABORTED


class WriteConflict(Conflict):
    """A concurrent write got there first; retrying is safe."""


class RelationshipExists(Conflict):
    """CREATE of a relationship that already exists."""

    code = Code.ALREADY_EXISTS
    reason = "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP"


# -- revisions and tokens ---------------------------------------------------------------------


class InvalidRevision(ZanziError):
    """A consistency token or revision that cannot be used."""

    code = Code.OUT_OF_RANGE


class MalformedToken(InvalidRevision):
    """The token does not decode, or its checksum does not match (tampered). INVALID_ARGUMENT,
    as SpiceDB answers for a token it cannot read."""

    code = Code.INVALID_ARGUMENT


class ForeignToken(InvalidRevision):
    """The token was issued by another datastore (INVALID_ARGUMENT)."""

    code = Code.INVALID_ARGUMENT


class RevisionGarbageCollected(InvalidRevision):
    """The token's revision is older than the garbage-collection window."""


class RevisionInFuture(InvalidRevision):
    """The token's revision is newer than anything this datastore has committed."""


# -- limits -----------------------------------------------------------------------------------


class LimitExceeded(ZanziError):
    """A request exceeded a configured limit."""

    code = Code.RESOURCE_EXHAUSTED


class MaxDepthExceeded(LimitExceeded):
    """Resolution went deeper than the depth limit, usually because of cyclic data."""

    reason = "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED"


class TooManyUpdates(InvalidArgument):
    """A write or bulk request carries more items than allowed (INVALID_ARGUMENT, as SpiceDB)."""

    reason = "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST"


class TooManyChecks(InvalidArgument):
    """A bulk check carries more items than allowed."""

    reason = "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST"


# -- availability -----------------------------------------------------------------------------


class Unavailable(ZanziError):
    """The service cannot serve this request right now."""

    code = Code.UNAVAILABLE


class ReadOnly(Unavailable):
    """The datastore is in read-only mode."""

    reason = "ERROR_REASON_SERVICE_READ_ONLY"


# -- credentials (servers) --------------------------------------------------------------------


class Unauthenticated(ZanziError):
    """The request carries no credentials (a server's ``authorization: Bearer`` key)."""

    code = Code.UNAUTHENTICATED


class PermissionDenied(ZanziError):
    """The request's credentials are refused (a wrong preshared key)."""

    code = Code.PERMISSION_DENIED


class InternalError(ZanziError):
    """Anything unexpected. Keeps the cause; shows a generic message."""

    code = Code.INTERNAL


# -- translation ------------------------------------------------------------------------------


def _code_of(exc: BaseException) -> Code:
    for klass in type(exc).__mro__:
        code = klass.__dict__.get("code")
        if isinstance(code, Code):
            return code
    return Code.INTERNAL


def grpc_status_name(exc: BaseException) -> str:
    """The gRPC status name (``"INVALID_ARGUMENT"``...) for any exception."""
    return _WIRE[_code_of(exc)][0]


def http_status(exc: BaseException) -> int:
    """The HTTP status for any exception."""
    return _WIRE[_code_of(exc)][1]


def exit_code(exc: BaseException) -> int:
    """The CLI exit status: 2 for invalid input, 1 for everything else."""
    return 2 if _code_of(exc) is Code.INVALID_ARGUMENT else 1
