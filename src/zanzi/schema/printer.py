"""Compiled schema -> canonical schema text that compiles back to an equal schema.

The layout follows SpiceDB's generator: ``use`` lines first, then caveats, then definitions, one
blank line between blocks, a tab of indentation, ``|`` between allowed types. In expressions every
nested operator is parenthesised (``a + (b & c)``) except the left side of ``-`` (``a - b - c``),
so the text reads the same whatever one remembers of the precedence rules. Comments are written
back before the item they belong to; a comment that is not already ``//`` or ``/* */`` text is
written as ``//`` lines.
"""

from __future__ import annotations

from zanzi.schema import ir

__all__ = ["print_schema", "print_rewrite"]


def _comment_lines(comment: str, indent: str) -> list[str]:
    if not comment:
        return []
    text = comment.strip()
    if text.startswith(("//", "/*")):
        return [f"{indent}{line}" if line else "" for line in comment.splitlines()]
    return [f"{indent}// {line}".rstrip() for line in comment.splitlines()]


def _composite(node: ir.Rewrite) -> bool:
    return isinstance(node, ir.Union | ir.Intersection | ir.Exclusion)


def _wrapped(node: ir.Rewrite) -> str:
    text = print_rewrite(node)
    return f"({text})" if _composite(node) else text


def print_rewrite(node: ir.Rewrite) -> str:
    """A permission expression in schema syntax."""
    if isinstance(node, ir.Union):
        return " + ".join(_wrapped(child) for child in node.children) or "nil"
    if isinstance(node, ir.Intersection):
        return " & ".join(_wrapped(child) for child in node.children) or "nil"
    if isinstance(node, ir.Exclusion):
        # `-` is left-associative: `(a - b) - c` prints as `a - b - c`.
        base = print_rewrite(node.base) if isinstance(node.base, ir.Exclusion) else _wrapped(node.base)
        return f"{base} - {_wrapped(node.subtract)}"
    return str(node)


def _uses(schema: ir.Schema) -> list[str]:
    flags = set(schema.uses)
    for definition in schema.definitions.values():
        if any(a.expiration for r in definition.relations.values() for a in r.allowed):
            flags.add("expiration")
        if any(
            isinstance(n, ir.SelfRef) for p in definition.permissions.values() for n in ir.walk(p.rewrite)
        ):
            flags.add("self")
    return sorted(flags)


def _ordered(definition: ir.Definition) -> list[ir.Relation | ir.Permission]:
    """Source order when the positions say it (relations and permissions interleaved as written),
    else relations first; members spliced in from partials keep the order they were compiled in."""
    relations = list(definition.relations.values())
    permissions = list(definition.permissions.values())
    members: list[ir.Relation | ir.Permission] = [*relations, *permissions]
    keys = [(m.position.source, m.position.line, m.position.column) if m.position else None for m in members]
    if any(k is None for k in keys) or len({k[0] for k in keys if k}) > 1:
        return members
    for group in (relations, permissions):
        lines = [(m.position.line, m.position.column) for m in group if m.position]
        if lines != sorted(lines):
            return members
    members.sort(key=lambda m: (m.position.line, m.position.column) if m.position else (0, 0))
    return members


def _definition(definition: ir.Definition) -> list[str]:
    lines = _comment_lines(definition.comment, "")
    members = _ordered(definition)
    if not members:
        return [*lines, f"definition {definition.name} {{}}"]
    lines.append(f"definition {definition.name} {{")
    for member in members:
        lines.extend(_comment_lines(member.comment, "\t"))
        if isinstance(member, ir.Relation):
            lines.append(f"\trelation {member.name}: {' | '.join(str(a) for a in member.allowed)}")
        else:
            annotation = f": {' | '.join(member.types)}" if member.types else ""
            lines.append(f"\tpermission {member.name}{annotation} = {print_rewrite(member.rewrite)}")
    lines.append("}")
    return lines


def _caveat(caveat: ir.CaveatDefinition) -> list[str]:
    params = ", ".join(f"{p.name} {p.type}" for p in caveat.parameters)
    return [
        *_comment_lines(caveat.comment, ""),
        f"caveat {caveat.name}({params}) {{",
        f"\t{caveat.expression}",
        "}",
    ]


def print_schema(schema: ir.Schema) -> str:
    """Canonical schema text for ``schema``; ``compile_schema(print_schema(s))`` equals ``s``
    (positions aside)."""
    blocks: list[list[str]] = []
    uses = _uses(schema)
    if uses:
        blocks.append([f"use {flag}" for flag in uses])
    blocks.extend(_caveat(c) for c in schema.caveats.values())
    blocks.extend(_definition(d) for d in schema.definitions.values())
    return "\n\n".join("\n".join(block) for block in blocks) + ("\n" if blocks else "")
