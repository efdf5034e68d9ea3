"""Value types shared by every layer: references, relationships, updates, filters, consistency.

Every type is a frozen dataclass with a canonical ``str()`` (SpiceDB's text syntax) and a
``parse()`` classmethod that validates names and ids the way SpiceDB does.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from zanzi.errors import InvalidFilter, InvalidRelationship

__all__ = [
    "ELLIPSIS",
    "Caveat",
    "Consistency",
    "ConsistencyMode",
    "ExpandSubject",
    "ExpandTree",
    "ObjectRef",
    "Operation",
    "Permissionship",
    "Precondition",
    "PreconditionKind",
    "Relationship",
    "RelationshipFilter",
    "SetOperation",
    "SubjectFilter",
    "SubjectRef",
    "Update",
    "format_timestamp",
    "parse_timestamp",
    "validate_object_id",
    "validate_relation_name",
    "validate_subject_id",
    "validate_type_name",
]

#: The subject relation meaning "the object itself" (SpiceDB's ``...``). In model types a
#: subject without a relation has ``relation=None``; filters use ``ELLIPSIS`` to ask for
#: exactly those subjects (``None`` in a filter means "any relation").
ELLIPSIS = "..."
WILDCARD_ID = "*"
MAX_ID_LENGTH = 1024

_TYPE = r"(?:[a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]"
_REL = r"[a-z][a-z0-9_]{1,62}[a-z0-9]"
_ID = r"[a-zA-Z0-9/_|\-=+]+"
_TYPE_RE = re.compile(rf"^{_TYPE}$")
_REL_RE = re.compile(rf"^{_REL}$")
_ID_RE = re.compile(rf"^{_ID}$")

_OBJECT_RE = re.compile(rf"^(?P<type>{_TYPE}):(?P<id>{_ID})$")
_SUBJECT_RE = re.compile(rf"^(?P<type>{_TYPE}):(?P<id>{_ID}|\*)(?:#(?P<rel>{_REL}|\.\.\.))?$")
_REL_STRING_RE = re.compile(
    rf"^(?P<rtype>{_TYPE}):(?P<rid>{_ID})#(?P<rel>{_REL})"
    rf"@(?P<stype>{_TYPE}):(?P<sid>{_ID}|\*)(?:#(?P<srel>{_REL}|\.\.\.))?"
    rf"(?:\[(?P<caveat>{_TYPE})(?::(?P<ctx>\{{.*\}}))?\])?"
    r"(?:\[expiration:(?P<exp>[0-9\-.:TZ+]+)\])?$"
)


# -- validation helpers -----------------------------------------------------------------------


def validate_type_name(name: str, *, what: str = "object type") -> str:
    """Return ``name`` if it is a valid (optionally slash-prefixed) type name, else raise."""
    if not isinstance(name, str) or not _TYPE_RE.match(name):
        raise InvalidRelationship(
            f"invalid {what} {name!r}: must match {_TYPE} (lowercase, 3 to 64 characters, "
            "optional 'prefix/' segments)",
            field=what,
        )
    return name


def validate_relation_name(name: str, *, what: str = "relation") -> str:
    """Return ``name`` if it is a valid relation or permission name, else raise."""
    if not isinstance(name, str) or not _REL_RE.match(name):
        raise InvalidRelationship(
            f"invalid {what} {name!r}: must match {_REL} (lowercase, 3 to 64 characters)",
            field=what,
        )
    return name


def validate_object_id(object_id: str, *, what: str = "object id") -> str:
    """Return ``object_id`` if it is a valid resource id, else raise."""
    if not isinstance(object_id, str) or not _ID_RE.match(object_id):
        raise InvalidRelationship(
            f"invalid {what} {object_id!r}: must be 1 or more of the characters a-z A-Z 0-9 / _ | - = +",
            field=what,
        )
    if len(object_id) > MAX_ID_LENGTH:
        raise InvalidRelationship(f"invalid {what}: longer than {MAX_ID_LENGTH} characters", field=what)
    return object_id


def validate_subject_id(subject_id: str) -> str:
    """Return ``subject_id`` if it is a valid subject id (an object id or ``*``), else raise."""
    if subject_id == WILDCARD_ID:
        return subject_id
    return validate_object_id(subject_id, what="subject id")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRelationship(f"invalid RFC 3339 timestamp {text!r}", field="expiration") from None
    if value.tzinfo is None:
        raise InvalidRelationship(f"timestamp {text!r} has no time zone", field="expiration")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing ``Z`` and no needless fraction."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


# -- references -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """An object, ``type:id`` (for example ``document:readme``)."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    @classmethod
    def parse(cls, text: str | ObjectRef) -> ObjectRef:
        """Parse ``type:id``; an ``ObjectRef`` is returned unchanged."""
        if isinstance(text, ObjectRef):
            return text
        if not isinstance(text, str):
            raise InvalidRelationship(f"expected an object reference string, got {type(text).__name__}")
        match = _OBJECT_RE.match(text)
        if match is None:
            _explain_object(text)
            raise InvalidRelationship(f"invalid object reference {text!r}: expected type:id")
        return cls(match["type"], validate_object_id(match["id"]))

    def validate(self) -> ObjectRef:
        """Raise :class:`InvalidRelationship` unless type and id are well formed."""
        validate_type_name(self.type)
        validate_object_id(self.id)
        return self

    def with_id(self, object_id: str) -> ObjectRef:
        return replace(self, id=object_id)


def _explain_object(text: str) -> None:
    """Raise a precise error for a malformed ``type:id``, if one part is clearly at fault."""
    if ":" not in text:
        raise InvalidRelationship(f"invalid object reference {text!r}: expected type:id (missing ':')")
    obj_type, _, obj_id = text.partition(":")
    validate_type_name(obj_type)
    validate_object_id(obj_id)


@dataclass(frozen=True, slots=True, order=True)
class SubjectRef:
    """A subject: an object (``user:alice``), a wildcard (``user:*``) or a userset
    (``group:eng#member``). ``relation`` is ``None`` for the object itself."""

    type: str
    id: str
    relation: str | None = None

    def __str__(self) -> str:
        if self.relation is None:
            return f"{self.type}:{self.id}"
        return f"{self.type}:{self.id}#{self.relation}"

    @property
    def is_wildcard(self) -> bool:
        return self.id == WILDCARD_ID

    @property
    def object(self) -> ObjectRef:
        return ObjectRef(self.type, self.id)

    @classmethod
    def parse(cls, text: str | SubjectRef | ObjectRef) -> SubjectRef:
        """Parse ``type:id``, ``type:*``, ``type:id#relation`` or ``type:id#...``."""
        if isinstance(text, SubjectRef):
            return text
        if isinstance(text, ObjectRef):
            return cls(text.type, text.id)
        if not isinstance(text, str):
            raise InvalidRelationship(f"expected a subject reference string, got {type(text).__name__}")
        match = _SUBJECT_RE.match(text)
        if match is None:
            obj, _, rel = text.partition("#")
            if obj.endswith(":*"):
                validate_type_name(obj[:-2])
            else:
                _explain_object(obj)
            if rel and rel != ELLIPSIS:
                validate_relation_name(rel, what="subject relation")
            raise InvalidRelationship(f"invalid subject reference {text!r}: expected type:id[#relation]")
        rel = match["rel"]
        subject_id = match["id"]
        if subject_id != WILDCARD_ID:
            validate_object_id(subject_id, what="subject id")
        return cls(match["type"], subject_id, None if rel in (None, ELLIPSIS) else rel)

    def validate(self) -> SubjectRef:
        validate_type_name(self.type, what="subject type")
        validate_subject_id(self.id)
        if self.relation is not None and self.relation != ELLIPSIS:
            validate_relation_name(self.relation, what="subject relation")
        if self.relation is not None and self.is_wildcard:
            raise InvalidRelationship(f"wildcard subject {self} cannot carry a relation")
        return self

    def with_relation(self, relation: str | None) -> SubjectRef:
        return replace(self, relation=None if relation == ELLIPSIS else relation)


# -- relationships ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caveat:
    """A caveat on a relationship: its name and the part of its context stored with it."""

    name: str
    context: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        if not self.context:
            return self.name
        return f"{self.name}:{json.dumps(dict(self.context), separators=(',', ':'), sort_keys=True)}"


@dataclass(frozen=True, slots=True)
class Relationship:
    """``resource#relation@subject``, with an optional caveat and expiration.

    Two relationships with the same resource, relation and subject are the same relationship
    (:meth:`key`); caveat and expiration are attributes of it, as in SpiceDB.
    """

    resource: ObjectRef
    relation: str
    subject: SubjectRef
    caveat: Caveat | None = None
    expiration: datetime | None = None

    def __str__(self) -> str:
        text = f"{self.resource}#{self.relation}@{self.subject}"
        if self.caveat is not None:
            text += f"[{self.caveat}]"
        if self.expiration is not None:
            text += f"[expiration:{format_timestamp(self.expiration)}]"
        return text

    def key(self) -> tuple[str, str, str, str, str, str | None]:
        """The identity of the relationship: everything but caveat and expiration."""
        r, s = self.resource, self.subject
        return (r.type, r.id, self.relation, s.type, s.id, s.relation)

    @classmethod
    def parse(cls, text: str | Relationship) -> Relationship:
        """Parse SpiceDB's relationship syntax, for example
        ``document:1#viewer@group:eng#member[only_weekdays:{"tz":"UTC"}][expiration:2030-01-01T00:00:00Z]``.
        """
        if isinstance(text, Relationship):
            return text
        if not isinstance(text, str):
            raise InvalidRelationship(f"expected a relationship string, got {type(text).__name__}")
        text = text.strip()
        match = _REL_STRING_RE.match(text)
        if match is None:
            _explain_relationship(text)
            raise InvalidRelationship(
                f"invalid relationship {text!r}: expected "
                "resource_type:id#relation@subject_type:id[#subject_relation][caveat][expiration]"
            )
        rtype, rid, rel, stype, subject_id, srel, caveat_name, ctx, exp = match.groups()
        # The pattern already checked the characters; only the length is left.
        if len(rid) > MAX_ID_LENGTH or len(subject_id) > MAX_ID_LENGTH:
            validate_object_id(rid, what="resource id")
            validate_subject_id(subject_id)
        caveat = None
        if caveat_name:
            context: dict[str, Any] = {}
            if ctx:
                try:
                    context = json.loads(ctx)
                except json.JSONDecodeError as exc:
                    raise InvalidRelationship(f"invalid caveat context JSON in {text!r}: {exc}") from None
                if not isinstance(context, dict):
                    raise InvalidRelationship(f"caveat context in {text!r} must be a JSON object")
            caveat = Caveat(caveat_name, context)
        expiration = parse_timestamp(exp) if exp else None
        if subject_id == WILDCARD_ID and srel is not None and srel != ELLIPSIS:
            raise InvalidRelationship(
                f"invalid relationship {text!r}: a wildcard subject cannot have a relation"
            )
        subject = SubjectRef(stype, subject_id, None if srel in (None, ELLIPSIS) else srel)
        return cls(ObjectRef(rtype, rid), rel, subject, caveat, expiration)

    def validate(self) -> Relationship:
        """Check every name and id; raise :class:`InvalidRelationship` on the first bad one."""
        self.resource.validate()
        if self.resource.id == WILDCARD_ID:
            raise InvalidRelationship(f"resource id of {self} cannot be a wildcard")
        validate_relation_name(self.relation)
        self.subject.validate()
        if self.caveat is not None:
            validate_type_name(self.caveat.name, what="caveat name")
        return self

    def with_caveat(self, caveat: Caveat | None) -> Relationship:
        return replace(self, caveat=caveat)

    def with_expiration(self, expiration: datetime | None) -> Relationship:
        return replace(self, expiration=expiration)


def _explain_relationship(text: str) -> None:
    if "#" not in text or "@" not in text:
        raise InvalidRelationship(
            f"invalid relationship {text!r}: expected resource_type:id#relation@subject_type:id"
        )
    resource_part, _, subject_part = text.partition("@")
    obj, _, rel = resource_part.partition("#")
    ObjectRef.parse(obj)
    validate_relation_name(rel)
    subject_core = subject_part.split("[", 1)[0]
    SubjectRef.parse(subject_core)


# -- writes -----------------------------------------------------------------------------------


class Operation(enum.Enum):
    """What a write does with one relationship."""

    CREATE = "create"  # fails if it exists
    TOUCH = "touch"  # upsert
    DELETE = "delete"  # no error if absent


@dataclass(frozen=True, slots=True)
class Update:
    """One relationship change in a write."""

    operation: Operation
    relationship: Relationship

    def __str__(self) -> str:
        return f"{self.operation.name} {self.relationship}"

    @classmethod
    def create(cls, relationship: str | Relationship) -> Update:
        return cls(Operation.CREATE, Relationship.parse(relationship))

    @classmethod
    def touch(cls, relationship: str | Relationship) -> Update:
        return cls(Operation.TOUCH, Relationship.parse(relationship))

    @classmethod
    def delete(cls, relationship: str | Relationship) -> Update:
        return cls(Operation.DELETE, Relationship.parse(relationship))


@dataclass(frozen=True, slots=True)
class SubjectFilter:
    """Matches subjects by type, optional id and optional relation.

    ``relation=None`` matches any subject relation; ``relation=ELLIPSIS`` matches only subjects
    without one.
    """

    type: str
    id: str | None = None
    relation: str | None = None

    def __str__(self) -> str:
        text = self.type
        if self.id is not None:
            text += f":{self.id}"
        if self.relation is not None:
            text += f"#{self.relation}"
        return text

    def matches(self, subject: SubjectRef) -> bool:
        if subject.type != self.type:
            return False
        if self.id is not None and subject.id != self.id:
            return False
        if self.relation is None:
            return True
        if self.relation == ELLIPSIS:
            return subject.relation is None
        return subject.relation == self.relation

    def validate(self) -> SubjectFilter:
        validate_type_name(self.type, what="subject type")
        if self.id is not None:
            validate_subject_id(self.id)
        if self.relation is not None and self.relation != ELLIPSIS:
            validate_relation_name(self.relation, what="subject relation")
        return self


_FILTER_RE = re.compile(
    rf"^(?P<rtype>{_TYPE})?(?::(?P<rid>{_ID}))?(?:#(?P<rel>{_REL}))?"
    rf"(?:@(?P<stype>{_TYPE})(?::(?P<sid>{_ID}|\*))?(?:#(?P<srel>{_REL}|\.\.\.))?)?$"
)


@dataclass(frozen=True, slots=True)
class RelationshipFilter:
    """Selects relationships. Every field is optional, but at least one must be set.

    ``resource_id`` and ``resource_id_prefix`` are exclusive, as in SpiceDB.
    """

    resource_type: str | None = None
    resource_id: str | None = None
    resource_id_prefix: str | None = None
    relation: str | None = None
    subject: SubjectFilter | None = None

    def __str__(self) -> str:
        text = self.resource_type or ""
        if self.resource_id is not None:
            text += f":{self.resource_id}"
        elif self.resource_id_prefix is not None:
            text += f":{self.resource_id_prefix}*"
        if self.relation is not None:
            text += f"#{self.relation}"
        if self.subject is not None:
            text += f"@{self.subject}"
        return text

    @classmethod
    def parse(cls, text: str | RelationshipFilter) -> RelationshipFilter:
        """Parse ``[type][:id][#relation][@subject_type[:id][#relation]]``."""
        if isinstance(text, RelationshipFilter):
            return text
        match = _FILTER_RE.match(text.strip()) if isinstance(text, str) else None
        if match is None or not text:
            raise InvalidFilter(
                f"invalid relationship filter {text!r}: expected "
                "[resource_type][:id][#relation][@subject_type[:id][#relation]]"
            )
        subject = None
        if match["stype"]:
            subject = SubjectFilter(match["stype"], match["sid"], match["srel"])
        return cls(match["rtype"], match["rid"], None, match["rel"], subject).validate()

    def validate(self) -> RelationshipFilter:
        if (
            self.resource_type is None
            and self.resource_id is None
            and self.resource_id_prefix is None
            and self.relation is None
            and self.subject is None
        ):
            raise InvalidFilter("a relationship filter needs at least one field")
        if self.resource_id is not None and self.resource_id_prefix is not None:
            raise InvalidFilter("resource_id and resource_id_prefix cannot both be set")
        if self.resource_type is not None:
            validate_type_name(self.resource_type, what="resource type")
        if self.resource_id is not None:
            validate_object_id(self.resource_id, what="resource id")
        if self.relation is not None:
            validate_relation_name(self.relation)
        if self.subject is not None:
            self.subject.validate()
        return self

    def matches(self, rel: Relationship) -> bool:
        if self.resource_type is not None and rel.resource.type != self.resource_type:
            return False
        if self.resource_id is not None and rel.resource.id != self.resource_id:
            return False
        if self.resource_id_prefix is not None and not rel.resource.id.startswith(self.resource_id_prefix):
            return False
        if self.relation is not None and rel.relation != self.relation:
            return False
        return self.subject is None or self.subject.matches(rel.subject)


class PreconditionKind(enum.Enum):
    MUST_MATCH = "must_match"
    MUST_NOT_MATCH = "must_not_match"


@dataclass(frozen=True, slots=True)
class Precondition:
    """A condition on the current data that a write requires."""

    kind: PreconditionKind
    filter: RelationshipFilter

    def __str__(self) -> str:
        return f"{self.kind.value} {self.filter}"

    @classmethod
    def must_match(cls, filter: str | RelationshipFilter) -> Precondition:
        return cls(PreconditionKind.MUST_MATCH, RelationshipFilter.parse(filter))

    @classmethod
    def must_not_match(cls, filter: str | RelationshipFilter) -> Precondition:
        return cls(PreconditionKind.MUST_NOT_MATCH, RelationshipFilter.parse(filter))


# -- reads ------------------------------------------------------------------------------------


class ConsistencyMode(enum.Enum):
    MINIMIZE_LATENCY = "minimize_latency"
    AT_LEAST_AS_FRESH = "at_least_as_fresh"
    AT_EXACT_SNAPSHOT = "at_exact_snapshot"
    FULLY_CONSISTENT = "fully_consistent"


@dataclass(frozen=True, slots=True)
class Consistency:
    """Which snapshot a read uses (Zanzibar's zookie protocol).

    - ``minimize_latency()``: any recent snapshot the service has at hand;
    - ``at_least_as_fresh(token)``: a snapshot no older than the token's (prevents the
      "new enemy" problem);
    - ``at_exact_snapshot(token)``: exactly the token's snapshot;
    - ``fully_consistent()``: the newest committed snapshot.
    """

    mode: ConsistencyMode = ConsistencyMode.MINIMIZE_LATENCY
    token: str | None = None

    def __post_init__(self) -> None:
        needs_token = self.mode in (ConsistencyMode.AT_LEAST_AS_FRESH, ConsistencyMode.AT_EXACT_SNAPSHOT)
        if needs_token and not self.token:
            raise InvalidFilter(f"consistency {self.mode.value} needs a token")

    def __str__(self) -> str:
        return self.mode.value if self.token is None else f"{self.mode.value}({self.token})"

    @classmethod
    def minimize_latency(cls) -> Consistency:
        return cls(ConsistencyMode.MINIMIZE_LATENCY)

    @classmethod
    def fully_consistent(cls) -> Consistency:
        return cls(ConsistencyMode.FULLY_CONSISTENT)

    @classmethod
    def at_least_as_fresh(cls, token: str) -> Consistency:
        return cls(ConsistencyMode.AT_LEAST_AS_FRESH, token)

    @classmethod
    def at_exact_snapshot(cls, token: str) -> Consistency:
        return cls(ConsistencyMode.AT_EXACT_SNAPSHOT, token)


class Permissionship(enum.Enum):
    """The answer to a check."""

    NO_PERMISSION = "no_permission"
    HAS_PERMISSION = "has_permission"
    CONDITIONAL_PERMISSION = "conditional_permission"


# -- expand -----------------------------------------------------------------------------------


class SetOperation(enum.Enum):
    """The kind of a node in an expand tree."""

    UNION = "union"
    INTERSECTION = "intersection"
    EXCLUSION = "exclusion"
    LEAF = "leaf"


@dataclass(frozen=True, slots=True)
class ExpandSubject:
    """A subject in an expand leaf, with the caveat and expiration of its relationship."""

    subject: SubjectRef
    caveat: Caveat | None = None
    expiration: datetime | None = None

    def __str__(self) -> str:
        text = str(self.subject)
        if self.caveat is not None:
            text += f"[{self.caveat}]"
        return text


@dataclass(frozen=True, slots=True)
class ExpandTree:
    """The userset tree of ``resource#relation`` (Zanzibar's Expand).

    A ``LEAF`` lists the subjects stored directly on a relation (usersets included, unexpanded
    unless the expansion was recursive). Other nodes combine their ``children``. ``caveat`` is
    set on the subtree reached through a caveated relationship (an arrow's tupleset).
    """

    resource: ObjectRef
    relation: str
    operation: SetOperation
    children: tuple[ExpandTree, ...] = ()
    subjects: tuple[ExpandSubject, ...] = ()
    caveat: Caveat | None = None

    def render(self, indent: str = "") -> str:
        """A readable multi-line rendering of the tree."""
        head = f"{indent}{self.resource}#{self.relation}"
        if self.caveat is not None:
            head += f" [{self.caveat}]"
        if self.operation is SetOperation.LEAF:
            return head + " -> " + (", ".join(map(str, self.subjects)) or "(none)")
        lines = [f"{head} {self.operation.value}"]
        lines.extend(child.render(indent + "  ") for child in self.children)
        return "\n".join(lines)
