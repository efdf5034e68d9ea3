"""Caveat evaluation for the engine: every caveat of a schema compiled once, evaluated on demand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zanzi.errors import UnknownCaveat
from zanzi.schema import ir
from zanzi.schema.caveats import CaveatProgram, compile_caveat, convert_context

__all__ = ["CelCaveats"]


class CelCaveats:
    """A :class:`~zanzi.engine.conditions.CaveatEvaluator` over one schema's caveats."""

    def __init__(self, schema: ir.Schema) -> None:
        self.programs: dict[str, CaveatProgram] = {
            name: compile_caveat(defn) for name, defn in schema.caveats.items()
        }

    def evaluate(self, name: str, context: Mapping[str, Any]) -> bool | tuple[str, ...]:
        program = self.programs.get(name)
        if program is None:
            raise UnknownCaveat(f"caveat `{name}` not found", caveat=name)
        return program.evaluate(convert_context(program.types, context))

    def check_context(self, name: str, context: Mapping[str, Any]) -> None:
        """Raise :class:`~zanzi.errors.InvalidContext` if ``context`` does not fit the caveat's
        parameters (used for the context stored on a relationship)."""
        program = self.programs.get(name)
        if program is None:
            raise UnknownCaveat(f"caveat `{name}` not found", caveat=name)
        convert_context(program.types, context)
