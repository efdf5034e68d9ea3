"""Condition algebra and three-valued decision with caveat context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from zanzi.engine.conditions import AllOf, AnyOf, CaveatCall, Not, both, decide, either, negate
from zanzi.errors import NotSupported


class Eval:
    """x_is_one(x): true when x == 1; unknown without x."""

    def evaluate(self, name: str, context: Mapping[str, Any]) -> bool | tuple[str, ...]:
        if "x" not in context:
            return ("x",)
        return context["x"] == 1


C = CaveatCall.of("x_is_one", {})


def test_booleans_stay_booleans() -> None:
    assert either(False, False) is False
    assert either(False, True) is True
    assert both(True, True) is True
    assert both(True, False) is False
    assert negate(True) is False


def test_expressions_simplify_with_constants() -> None:
    assert either(C, True) is True
    assert either(C, False) == C
    assert both(C, True) == C
    assert both(C, False) is False
    assert negate(negate(C)) == C
    assert isinstance(either(C, CaveatCall.of("other", {})), AnyOf)
    assert isinstance(both(C, CaveatCall.of("other", {})), AllOf)


def test_decide_reports_missing_parameters() -> None:
    d = decide(C, Eval(), {})
    assert d.allowed is None and d.missing == ("x",)
    assert decide(C, Eval(), {"x": 1}).allowed is True
    assert decide(Not(C), Eval(), {"x": 1}).allowed is False


def test_relationship_context_wins_over_request_context() -> None:
    stored = CaveatCall.of("x_is_one", {"x": 2})
    assert decide(stored, Eval(), {"x": 1}).allowed is False


def test_or_with_a_known_true_branch_needs_no_context() -> None:
    known = CaveatCall.of("x_is_one", {"x": 1})
    assert decide(either(C, known), Eval(), {}).allowed is True


def test_without_an_evaluator_caveats_are_not_supported() -> None:
    with pytest.raises(NotSupported):
        decide(C, None, {})
    assert decide(True, None, {}).allowed is True
