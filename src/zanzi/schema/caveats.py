"""Caveats: typed CEL expressions, checked when the schema is written and evaluated per check.

CEL comes from ``cel-expr-python``, Google's CEL runtime for Python (cel-cpp underneath): it has
a real type checker with cel-go's messages, and evaluates a compiled expression in a few
microseconds. Each caveat is compiled twice, once per schema:

- against its declared parameter types (``ipaddress`` as an opaque type), to reject undeclared
  names, type errors and non-boolean results exactly as SpiceDB does;
- against the runtime representation (an ``ipaddress`` is a string with an ``in_cidr`` method),
  the program that is evaluated.

Context values arrive as JSON-like Python values; :func:`convert_context` turns them into the
parameter's type (``timestamp`` from RFC 3339 text, ``duration`` from ``"1h30m"``...) and
raises :class:`~zanzi.errors.InvalidContext` when one does not fit.

Evaluation is three-valued: ``True``/``False``, or the names of the missing parameters when
the answer depends on them. CEL's ``&&`` and ``||`` absorb errors, so an expression that can be
decided without a missing parameter is decided (``a == 1 || b == 2`` with ``a = 1``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]

from zanzi.errors import InvalidContext, SchemaSyntaxError
from zanzi.schema import ir

__all__ = ["CaveatProgram", "CaveatType", "compile_caveat", "convert_context", "parse_caveat_type"]

T = cel.Type
_MISSING_RE = re.compile(r'No value with name "([^"]+)"')
_CEL_ERROR_RE = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_IDENT_RE = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


# -- parameter types --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaveatType:
    """A parameter type: ``int``, ``list<string>``, ``map<any>``, ``ipaddress``..."""

    name: str
    args: tuple[CaveatType, ...] = ()

    def __str__(self) -> str:
        return self.name if not self.args else f"{self.name}<{', '.join(map(str, self.args))}>"


def parse_caveat_type(text: str) -> CaveatType:
    """Parse ``list<map<int>>`` and the like (the compiler has already checked the names)."""
    text = text.strip()
    if "<" not in text:
        return CaveatType(text)
    head, _, rest = text.partition("<")
    if not rest.endswith(">"):
        raise ValueError(f"malformed caveat type {text!r}")
    inner = rest[:-1]
    args, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(parse_caveat_type(inner[start:i]))
            start = i + 1
    args.append(parse_caveat_type(inner[start:]))
    return CaveatType(head.strip(), tuple(args))


_SCALARS_CHECK: dict[str, Any] = {
    "any": T.DYN,
    "bool": T.BOOL,
    "bytes": T.BYTES,
    "double": T.DOUBLE,
    "duration": T.DURATION,
    "int": T.INT,
    "string": T.STRING,
    "timestamp": T.TIMESTAMP,
    "uint": T.UINT,
}
_IPADDRESS = T.AbstractType("ipaddress")


def _cel_type(t: CaveatType, *, runtime: bool) -> Any:
    if t.name == "ipaddress":
        return T.STRING if runtime else _IPADDRESS
    if t.name == "list":
        return T.List(_cel_type(t.args[0], runtime=runtime))
    if t.name == "map":
        return T.Map(T.STRING, _cel_type(t.args[0], runtime=runtime))
    return _SCALARS_CHECK[t.name]


# -- functions SpiceDB adds to CEL --------------------------------------------------------------


def _in_cidr(address: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ValueError(f"in_cidr: {exc}") from None


def _is_subtree_of(small: Any, big: Any) -> bool:
    if isinstance(small, Mapping):
        if not isinstance(big, Mapping):
            return False
        return all(k in big and _is_subtree_of(v, big[k]) for k, v in small.items())
    return bool(small == big)


def _functions(runtime: bool) -> list[Any]:
    ip = T.STRING if runtime else _IPADDRESS
    dyn_map = T.Map(T.STRING, T.DYN)
    return [
        cel.FunctionDecl(
            "in_cidr",
            [cel.Overload("ipaddress_in_cidr_string", T.BOOL, [ip, T.STRING], is_member=True, impl=_in_cidr)],
        ),
        cel.FunctionDecl(
            "isSubtreeOf",
            [
                cel.Overload(
                    "map_is_subtree_of_map", T.BOOL, [dyn_map, dyn_map], is_member=True, impl=_is_subtree_of
                )
            ],
        ),
    ]


# -- compiling --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaveatProgram:
    """One caveat, compiled: evaluate it with :meth:`evaluate`."""

    name: str
    types: Mapping[str, CaveatType]
    referenced: frozenset[str]
    program: Any

    def evaluate(self, context: Mapping[str, Any]) -> bool | tuple[str, ...]:
        """``True``/``False``, or the sorted names of missing parameters the answer needs.

        ``context`` must already be converted (:func:`convert_context`)."""
        data = {k: v for k, v in context.items() if k in self.types}
        value = self.program.eval(data=data)
        if value.type() == T.BOOL:
            return bool(value.value())
        message = str(value.value())
        missing = tuple(sorted(p for p in self.referenced if p not in data))
        if missing and (_MISSING_RE.search(message) or value.type() == T.UNKNOWN):
            return missing
        raise InvalidContext(f"caveat `{self.name}` could not be evaluated: {message}", caveat=self.name)


def compile_caveat(caveat: ir.CaveatDefinition) -> CaveatProgram:
    """Type-check and compile a caveat; raise :class:`SchemaSyntaxError` with the line and
    column of the problem in the schema."""
    types = {p.name: parse_caveat_type(p.type) for p in caveat.parameters}
    check_env = cel.NewEnv(
        variables={n: _cel_type(t, runtime=False) for n, t in types.items()}, functions=_functions(False)
    )
    try:
        checked = check_env.compile(caveat.expression)
    except RuntimeError as exc:
        raise _cel_error(caveat, str(exc)) from None
    result_type = checked.return_type()
    if result_type != T.BOOL:
        found = result_type.name().lower()
        raise _error(caveat, f"caveat expression must result in a boolean value: found `{found}`")
    run_env = cel.NewEnv(
        variables={n: _cel_type(t, runtime=True) for n, t in types.items()}, functions=_functions(True)
    )
    try:
        program = run_env.compile(caveat.expression)
    except RuntimeError as exc:  # pragma: no cover - the checked form compiled
        raise _cel_error(caveat, str(exc)) from None
    referenced = frozenset(_IDENT_RE.findall(_strip_strings(caveat.expression))) & types.keys()
    return CaveatProgram(caveat.name, types, referenced, program)


def _strip_strings(expression: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expression)


def _error(caveat: ir.CaveatDefinition, message: str, line: int = 1, column: int = 1) -> SchemaSyntaxError:
    where = caveat.expression_position or caveat.position
    details: dict[str, Any] = {"caveat": caveat.name}
    if where is not None:
        details["line"] = where.line + line - 1
        details["column"] = (where.column + column - 1) if line == 1 else column
        if where.source:
            details["source"] = where.source
    return SchemaSyntaxError(f"error in caveat `{caveat.name}`: {message}", **details)


def _cel_error(caveat: ir.CaveatDefinition, text: str) -> SchemaSyntaxError:
    match = _CEL_ERROR_RE.search(text)
    if match is None:
        return _error(caveat, text.strip().splitlines()[0] if text.strip() else "invalid CEL expression")
    line, column = int(match[1]), int(match[2])
    message = f"ERROR: {caveat.name}:{line}:{column}: {match[3].strip()}"
    return _error(caveat, message, line, column)


# -- context ----------------------------------------------------------------------------------


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _duration(text: str) -> timedelta:
    """Go's duration syntax: ``1h30m``, ``-2.5s``, ``300ms``."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    pos, seconds = 0, 0.0
    for m in _DURATION_RE.finditer(body):
        if m.start() != pos:
            raise ValueError(text)
        seconds += float(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(text)
    return timedelta(seconds=sign * seconds)


def _convert(value: Any, t: CaveatType, path: str) -> Any:
    def fail(expected: str) -> InvalidContext:
        return InvalidContext(
            f"type error for parameter `{path}`: expected {expected}, found {type(value).__name__} {value!r}",
            parameter=path,
        )

    name = t.name
    if name == "any":
        return value
    if name == "bool":
        if isinstance(value, bool):
            return value
        raise fail("bool")
    if name in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(name)
        if isinstance(value, float):
            if not value.is_integer():
                raise fail(name)
            value = int(value)
        if name == "uint" and value < 0:
            raise fail("uint (not negative)")
        if not -(2**63) <= value < 2**64:
            raise fail(f"{name} (64-bit)")
        return value
    if name == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("double")
        return float(value)
    if name == "string":
        if isinstance(value, str):
            return value
        raise fail("string")
    if name == "bytes":
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return value.encode()
        raise fail("bytes")
    if name == "timestamp":
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise fail("an RFC 3339 timestamp") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise fail("timestamp")
    if name == "duration":
        if isinstance(value, timedelta):
            return value
        if isinstance(value, str):
            try:
                return _duration(value)
            except ValueError:
                raise fail('a duration such as "1h30m"') from None
        raise fail("duration")
    if name == "ipaddress":
        if isinstance(value, str):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise fail("an IP address") from None
            return value
        raise fail("ipaddress")
    if name == "list":
        if isinstance(value, list | tuple):
            return [_convert(v, t.args[0], f"{path}[{i}]") for i, v in enumerate(value)]
        raise fail(str(t))
    if name == "map":
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return {k: _convert(v, t.args[0], f"{path}.{k}") for k, v in value.items()}
        raise fail(str(t))
    raise fail(str(t))  # pragma: no cover - the compiler allows no other names


def convert_context(types: Mapping[str, CaveatType], context: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``context`` converted to their caveat types; other keys are dropped."""
    return {k: _convert(v, types[k], k) for k, v in context.items() if k in types}
