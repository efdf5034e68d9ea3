"""Membership conditions: ``True``, ``False`` or an expression over caveats.

The engine computes, for every question, *under which condition* the answer is yes. Without
caveats that condition is a plain ``bool``, and the helpers below keep it one, so the common
case costs nothing. A caveated relationship contributes a :class:`CaveatCall`; unions,
intersections and exclusions combine them into :class:`AllOf`, :class:`AnyOf` and
:class:`Not`. The condition is decided at the end, once, against the request's context.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AllOf",
    "AnyOf",
    "CaveatCall",
    "CaveatEvaluator",
    "Cond",
    "Decision",
    "Not",
    "all_of",
    "any_of",
    "both",
    "decide",
    "either",
    "negate",
]


class Expr:
    """Base of non-trivial conditions."""

    __slots__ = ()


Cond = bool | Expr


@dataclass(frozen=True, slots=True)
class CaveatCall(Expr):
    """One caveat with the context stored on the relationship that carried it."""

    name: str
    context_json: str = "{}"
    context: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(cls, name: str, context: Mapping[str, Any] | None) -> CaveatCall:
        ctx = dict(context or {})
        return cls(name, json.dumps(ctx, sort_keys=True, separators=(",", ":")), ctx)

    def __str__(self) -> str:
        return self.name if self.context_json == "{}" else f"{self.name}:{self.context_json}"


@dataclass(frozen=True, slots=True)
class AllOf(Expr):
    children: tuple[Expr, ...]

    def __str__(self) -> str:
        return "(" + " && ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class AnyOf(Expr):
    children: tuple[Expr, ...]

    def __str__(self) -> str:
        return "(" + " || ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class Not(Expr):
    child: Expr

    def __str__(self) -> str:
        return f"!{self.child}"


def either(a: Cond, b: Cond) -> Cond:
    """``a OR b``."""
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    if a == b:
        return a
    assert isinstance(a, Expr) and isinstance(b, Expr)
    return AnyOf(_flatten(AnyOf, (a, b)))


def both(a: Cond, b: Cond) -> Cond:
    """``a AND b``."""
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    if a == b:
        return a
    assert isinstance(a, Expr) and isinstance(b, Expr)
    return AllOf(_flatten(AllOf, (a, b)))


def negate(a: Cond) -> Cond:
    """``NOT a``."""
    if a is True:
        return False
    if a is False:
        return True
    assert isinstance(a, Expr)
    if isinstance(a, Not):
        return a.child
    return Not(a)


def any_of(conds: Iterable[Cond]) -> Cond:
    result: Cond = False
    for c in conds:
        result = either(result, c)
        if result is True:
            return True
    return result


def all_of(conds: Iterable[Cond]) -> Cond:
    result: Cond = True
    for c in conds:
        result = both(result, c)
        if result is False:
            return False
    return result


def _flatten(kind: type[AllOf] | type[AnyOf], items: tuple[Expr, ...]) -> tuple[Expr, ...]:
    out: list[Expr] = []
    for item in items:
        if isinstance(item, kind):
            for child in item.children:
                if child not in out:
                    out.append(child)
        elif item not in out:
            out.append(item)
    return tuple(out)


# -- deciding ---------------------------------------------------------------------------------


class CaveatEvaluator(Protocol):
    """Evaluates one caveat. Returns ``True``/``False``, or the sorted names of the parameters
    that are missing from ``context`` when the answer depends on them."""

    def evaluate(self, name: str, context: Mapping[str, Any]) -> bool | tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided condition: yes, no, or unknown for lack of the ``missing`` parameters."""

    allowed: bool | None
    missing: tuple[str, ...] = ()


def decide(cond: Cond, evaluator: CaveatEvaluator | None, context: Mapping[str, Any] | None) -> Decision:
    """Decide ``cond`` with the request ``context``. Context stored on a relationship wins over
    the request's for the same key (SpiceDB's rule)."""
    if cond is True:
        return Decision(True)
    if cond is False:
        return Decision(False)
    if evaluator is None:
        from zanzi.errors import NotSupported

        raise NotSupported("this engine has no caveat evaluator; caveated relationships cannot be decided")
    value, missing = _decide(cond, evaluator, dict(context or {}))
    if value is None:
        return Decision(None, tuple(sorted(missing)))
    return Decision(value)


def _decide(
    cond: Expr, evaluator: CaveatEvaluator, request_context: dict[str, Any]
) -> tuple[bool | None, set[str]]:
    """Three-valued evaluation: ``None`` means unknown; the set holds the missing names."""
    if isinstance(cond, CaveatCall):
        merged = {**request_context, **cond.context}
        outcome = evaluator.evaluate(cond.name, merged)
        if isinstance(outcome, bool):
            return outcome, set()
        return None, set(outcome)
    if isinstance(cond, Not):
        value, child_missing = _decide(cond.child, evaluator, request_context)
        return (None if value is None else not value), child_missing
    if isinstance(cond, AllOf | AnyOf):
        short = isinstance(cond, AnyOf)  # AnyOf stops at True, AllOf at False
        missing: set[str] = set()
        unknown = False
        for child in cond.children:
            value, child_missing = _decide(child, evaluator, request_context)
            if value is short:
                return short, set()
            if value is None:
                unknown = True
                missing |= child_missing
        return (None, missing) if unknown else (not short, set())
    raise TypeError(f"not a condition: {cond!r}")
