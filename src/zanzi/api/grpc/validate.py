"""Request validation from the rules the authzed.api.v1 protos declare (protoc-gen-validate
``validate.rules`` options, read from the descriptors at runtime), as SpiceDB's validation
middleware applies them: names and ids must match their patterns, required messages must be
present, enum values must be defined and chosen, and so on.

A broken rule is an :class:`~zanzi.errors.InvalidArgument` whose message reads like SpiceDB's,
``validation error: subject.object.object_id: does not match regex pattern `...```. Checks are
compiled once per message type.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from zanzi.errors import InvalidArgument

__all__ = ["validate_request"]

try:  # shipped with the authzed package (its protos import it)
    from validate import validate_pb2 as _pgv
except ImportError:  # pragma: no cover - an authzed build without PGV options: no rule checks
    _pgv = None

Check = Callable[[Message, str], None]

_cache: dict[str, list[Check]] = {}
_lock = threading.Lock()


def validate_request(msg: Message) -> None:
    """Raise :class:`InvalidArgument` on the first rule ``msg`` breaks."""
    _validate(msg, "")


def _validate(msg: Message, prefix: str) -> None:
    for check in _checks(msg.DESCRIPTOR):  # type: ignore[arg-type]
        check(msg, prefix)


def _fail(path: str, message: str) -> None:
    raise InvalidArgument(f"validation error: {path}: {message}", field=path)


def _checks(desc: Descriptor) -> list[Check]:
    found = _cache.get(desc.full_name)
    if found is None:
        built = _build(desc)
        with _lock:
            found = _cache.setdefault(desc.full_name, built)
    return found


def _build(desc: Descriptor) -> list[Check]:
    checks: list[Check] = []
    if desc.full_name.startswith("google.protobuf."):
        return checks
    if _pgv is not None:
        for oneof in desc.oneofs:
            if oneof.GetOptions().Extensions[_pgv.required]:
                checks.append(_oneof_required(oneof.name))
    for field in desc.fields:
        rules = field.GetOptions().Extensions[_pgv.rules] if _pgv is not None else None
        if rules is not None and rules.ListFields():
            checks.extend(_field_checks(field, rules))
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            checks.append(_nested(field))
    return checks


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _oneof_required(name: str) -> Check:
    def check(msg: Message, prefix: str) -> None:
        if msg.WhichOneof(name) is None:
            _fail(_join(prefix, name), "exactly one field is required in oneof")

    return check


def _nested(field: FieldDescriptor) -> Check:
    """Validate the messages a field holds (each item of a repeated field)."""
    name = field.name

    def check(msg: Message, prefix: str) -> None:
        path = _join(prefix, name)
        if field.is_repeated:
            for i, item in enumerate(getattr(msg, name)):
                _validate(item, f"{path}[{i}]")
        elif msg.HasField(name):
            _validate(getattr(msg, name), path)

    return check


def _field_checks(field: FieldDescriptor, rules: Any) -> list[Check]:
    name = field.name
    kind = rules.WhichOneof("type")
    if field.is_repeated:
        if kind != "repeated":
            return []
        return [_repeated(field, rules.repeated)]
    value_check = _value_check(field, kind, getattr(rules, kind) if kind else None)
    checks: list[Check] = []
    if rules.HasField("message") and rules.message.required:

        def required(msg: Message, prefix: str) -> None:
            if not msg.HasField(name):
                _fail(_join(prefix, name), "value is required")

        checks.append(required)
    if value_check is not None:
        in_oneof = field.containing_oneof is not None

        def value(msg: Message, prefix: str) -> None:
            if in_oneof and not msg.HasField(name):  # rules apply to the chosen member only
                return
            value_check(getattr(msg, name), _join(prefix, name))

        checks.append(value)
    return checks


def _repeated(field: FieldDescriptor, rules: Any) -> Check:
    name = field.name
    item_rules = rules.items if rules.HasField("items") else None
    item_kind = item_rules.WhichOneof("type") if item_rules is not None else None
    item_check = _value_check(field, item_kind, getattr(item_rules, item_kind) if item_kind else None)
    min_items = rules.min_items if rules.HasField("min_items") else None
    max_items = rules.max_items if rules.HasField("max_items") else None

    def check(msg: Message, prefix: str) -> None:
        path = _join(prefix, name)
        items = getattr(msg, name)
        if min_items and len(items) < min_items:
            _fail(path, f"value must contain at least {min_items} item(s)")
        if max_items is not None and len(items) > max_items:
            _fail(path, f"value must contain no more than {max_items} item(s)")
        if item_check is not None:
            for i, item in enumerate(items):
                item_check(item, f"{path}[{i}]")

    return check


def _value_check(field: FieldDescriptor, kind: str | None, rules: Any) -> Callable[[Any, str], None] | None:
    """A check of one scalar value (a field, or an item of a repeated field)."""
    if kind == "string":
        return _string(rules)
    if kind == "enum" and field.enum_type is not None:
        return _enum(rules, {v.number for v in field.enum_type.values})
    if kind == "bool":
        return _bool(rules)
    if kind in ("uint32", "uint64", "int32", "int64", "sint32", "sint64", "fixed32", "fixed64"):
        return _number(rules)
    return None


def _anchored(pattern: str) -> re.Pattern[str]:
    # RE2's `$` matches only at the very end; Python's also before a final newline.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _string(rules: Any) -> Callable[[Any, str], None]:
    pattern = rules.pattern if rules.HasField("pattern") else None
    regex = _anchored(pattern) if pattern else None
    max_bytes = rules.max_bytes if rules.HasField("max_bytes") else None
    min_bytes = rules.min_bytes if rules.HasField("min_bytes") else None

    def check(value: str, path: str) -> None:
        size = len(value.encode())
        if max_bytes is not None and size > max_bytes:
            _fail(path, f"value length must be at most {max_bytes} bytes")
        if min_bytes is not None and size < min_bytes:
            _fail(path, f"value length must be at least {min_bytes} bytes")
        if regex is not None and regex.search(value) is None:
            _fail(path, f"does not match regex pattern `{pattern}`")

    return check


def _enum(rules: Any, defined: set[int]) -> Callable[[Any, str], None]:
    not_in = set(rules.not_in)
    within = set(getattr(rules, "in"))
    defined_only = rules.defined_only

    def check(value: int, path: str) -> None:
        if not_in and value in not_in:
            _fail(path, f"must not be in list {sorted(not_in)}")
        if within and value not in within:
            _fail(path, f"must be in list {sorted(within)}")
        if defined_only and value not in defined:  # proto3 enums are open: anything arrives
            _fail(path, "value must be one of the defined enum values")

    return check


def _bool(rules: Any) -> Callable[[Any, str], None]:
    const = rules.const if rules.HasField("const") else None

    def check(value: bool, path: str) -> None:
        if const is not None and value != const:
            _fail(path, f"value must equal {str(const).lower()}")

    return check


def _number(rules: Any) -> Callable[[Any, str], None]:
    bounds = {name: getattr(rules, name) for name in ("gt", "gte", "lt", "lte") if rules.HasField(name)}

    def check(value: int, path: str) -> None:
        if "gt" in bounds and not value > bounds["gt"]:
            _fail(path, f"value must be greater than {bounds['gt']}")
        if "gte" in bounds and not value >= bounds["gte"]:
            _fail(path, f"value must be greater than or equal to {bounds['gte']}")
        if "lt" in bounds and not value < bounds["lt"]:
            _fail(path, f"value must be less than {bounds['lt']}")
        if "lte" in bounds and not value <= bounds["lte"]:
            _fail(path, f"value must be less than or equal to {bounds['lte']}")

    return check
