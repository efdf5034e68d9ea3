"""Parse tree -> compiled :class:`~zanzi.schema.ir.Schema`.

What happens here (cross-references between definitions are checked later, in ``validate``):

* ``import "path.zed"`` statements are followed through an import resolver; every file is read
  once (so diamonds and cycles are fine) and its definitions take the import statement's place.
* ``partial`` blocks are expanded where ``...name`` refers to them, transitively and in any order.
* names get the object-type prefix (if one is configured) and must match SpiceDB's patterns.
* ``a + b + c`` becomes one ``Union`` with three children (likewise ``&``), ``-`` stays binary.
* doc comments become ``comment`` and token positions become ``position``.
* caveat parameter types are checked and the CEL body gets a light syntax/name check.

Problems found here raise :class:`~zanzi.errors.SchemaSyntaxError` with SpiceDB's wording
("parse error in `source`, line L, column C: ..."), as SpiceDB's compiler reports them; only
duplicate names (a definition or caveat twice, a relation twice in a definition) raise
:class:`~zanzi.errors.SchemaValidationError`, like the other checks of ``validate``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias

from zanzi.errors import SchemaSyntaxError, SchemaValidationError, ZanziError
from zanzi.schema import ast, ir
from zanzi.schema.cel import check_expression
from zanzi.schema.imports import ImportResolver
from zanzi.schema.parser import parse_tree, syntax_error
from zanzi.schema.tokens import SourceText, Span

__all__ = [
    "CAVEAT_TYPES",
    "DEFINITION_NAME_PATTERN",
    "RELATION_NAME_PATTERN",
    "ImportResolver",
    "compile_sources",
    "compile_tree",
    "normalize_comment",
]


DEFINITION_NAME_PATTERN = r"^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$"
RELATION_NAME_PATTERN = r"^[a-z][a-z0-9_]{1,62}[a-z0-9]$"
_DEFINITION_NAME = re.compile(DEFINITION_NAME_PATTERN)
_RELATION_NAME = re.compile(RELATION_NAME_PATTERN)

#: Caveat parameter types -> how many type arguments each takes.
CAVEAT_TYPES: dict[str, int] = {
    "any": 0,
    "bool": 0,
    "bytes": 0,
    "double": 0,
    "duration": 0,
    "int": 0,
    "ipaddress": 0,
    "string": 0,
    "timestamp": 0,
    "uint": 0,
    "list": 1,
    "map": 1,
}

# `use` flags that only matter while compiling; the rest are kept in Schema.uses.
_COMPILE_TIME_FLAGS = frozenset({"import", "partial"})


@dataclass(slots=True)
class _Unit:
    """One schema file: its text tables, its path (for relative imports) and its ``use`` flags."""

    source: SourceText
    path: str
    flags: set[str] = field(default_factory=set)


_Located: TypeAlias = "tuple[ast.Member, _Unit]"


def normalize_comment(comments: tuple[str, ...]) -> str:
    """SpiceDB's normalisation: every line of every comment trimmed, comments joined by newlines."""
    if not comments:
        return ""
    return "\n".join("\n".join(line.strip() for line in c.splitlines()) for c in comments)


def _fail(
    kind: type[ZanziError],
    message: str,
    span: Span,
    unit: _Unit,
    *,
    definition: str | None = None,
    relation: str | None = None,
) -> NoReturn:
    if kind is SchemaSyntaxError:  # SpiceDB's wording for parse and compile errors
        text = f"parse error in `{unit.source.name}`, line {span.line}, column {span.column}: {message}"
    else:
        text = f"{message} (in `{unit.source.name}`, line {span.line}, column {span.column})"
    raise kind(
        text,
        line=span.line,
        column=span.column,
        source=unit.source.name,
        excerpt=unit.source.excerpt(span.line, span.column),
        definition=definition,
        relation=relation,
    )


class _Compiler:
    def __init__(self, prefix: str | None, require_prefix: bool, resolver: ImportResolver | None) -> None:
        self._prefix = prefix or None
        self._require_prefix = require_prefix
        self._resolver = resolver
        self._visited: set[str] = set()
        self._items: list[tuple[ast.TopLevel, _Unit]] = []
        self._uses: set[str] = set()
        self.sources: dict[str, SourceText] = {}

    # -- files and imports ------------------------------------------------------------------

    def load(self, text: str, source: str, path: str) -> None:
        tree = parse_tree(text, source)
        if tree.diagnostics:
            raise syntax_error(tree, text)
        unit = _Unit(SourceText(text, source), path)
        self.sources[source] = unit.source
        self._visited.add(path)
        for item in tree.items:
            if isinstance(item, ast.UseFlag):
                if item.name in unit.flags:
                    _fail(SchemaSyntaxError, f"found duplicate use flag: {item.name}", item.span, unit)
                unit.flags.add(item.name or "")
                self._uses.add(item.name or "")
            elif isinstance(item, ast.Import):
                self._import(item, unit)
            else:
                self._items.append((item, unit))

    def _import(self, item: ast.Import, unit: _Unit) -> None:
        raw = item.path or ""
        if not raw.strip():
            _fail(SchemaSyntaxError, "import path must not be empty", item.span, unit)
        if raw.startswith("/") or ".." in raw.split("/") or "\\" in raw:
            _fail(
                SchemaSyntaxError,
                f"import path `{raw}` must stay within its folder (no absolute paths or '..')",
                item.span,
                unit,
            )
        target = posixpath.normpath(posixpath.join(posixpath.dirname(unit.path), raw))
        if target in self._visited:
            return
        if self._resolver is None:
            _fail(
                SchemaSyntaxError,
                f"cannot import `{raw}`: no import resolver was given to the compiler",
                item.span,
                unit,
            )
        try:
            text = self._resolver(target)
        except ZanziError as exc:
            _fail(SchemaSyntaxError, f"failed to read import `{raw}`: {exc.message}", item.span, unit)
        except (OSError, LookupError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _fail(SchemaSyntaxError, f"failed to read import `{raw}`: {reason}", item.span, unit)
        self.load(text, target, target)

    # -- names ------------------------------------------------------------------------------

    def _prefixed(self, raw: str, span: Span, unit: _Unit) -> str:
        if "/" in raw:
            return raw
        if self._require_prefix:
            _fail(SchemaSyntaxError, f"found reference `{raw}` without prefix", span, unit)
        return f"{self._prefix}/{raw}" if self._prefix else raw

    def _type_name(self, raw: str, span: Span, unit: _Unit, what: str) -> str:
        """A definition, caveat or type-reference name, prefixed and checked."""
        name = self._prefixed(raw, span, unit)
        if not _DEFINITION_NAME.match(name):
            _fail(
                SchemaSyntaxError,
                f"error in {what} {name}: name does not match regex pattern `{DEFINITION_NAME_PATTERN}`",
                span,
                unit,
            )
        return name

    @staticmethod
    def _check_relation_name(name: str, span: Span, unit: _Unit, what: str, definition: str) -> None:
        if not _RELATION_NAME.match(name):
            _fail(
                SchemaSyntaxError,
                f"error in {what} {name}: name does not match regex pattern `{RELATION_NAME_PATTERN}`",
                span,
                unit,
                definition=definition,
                relation=name,
            )

    # -- the whole schema -------------------------------------------------------------------

    def build(self) -> ir.Schema:
        partials = self._collect_partials()
        definitions: dict[str, ir.Definition] = {}
        caveats: dict[str, ir.CaveatDefinition] = {}
        names: set[str] = set()
        for item, unit in self._items:
            if isinstance(item, ast.Partial):
                continue
            if isinstance(item, ast.Definition):
                if item.name in partials:
                    _fail(
                        SchemaSyntaxError,
                        f"found definition with same name as existing partial: `{item.name}`",
                        item.span,
                        unit,
                    )
                compiled_def = self._definition(item, unit, partials)
                name = compiled_def.name
            else:
                assert isinstance(item, ast.CaveatDefinition)
                if item.name in partials:
                    _fail(
                        SchemaSyntaxError,
                        f"found caveat with same name as existing partial: `{item.name}`",
                        item.span,
                        unit,
                    )
                compiled_caveat = self._caveat(item, unit)
                name = compiled_caveat.name
            if name in names:
                _fail(
                    SchemaValidationError,
                    f"found name reused between multiple definitions and/or caveats: {name}",
                    item.span,
                    unit,
                    definition=name,
                )
            names.add(name)
            if isinstance(item, ast.Definition):
                definitions[name] = compiled_def
            else:
                caveats[name] = compiled_caveat
        return ir.Schema(definitions, caveats, frozenset(self._uses - _COMPILE_TIME_FLAGS))

    # -- partials ---------------------------------------------------------------------------

    def _collect_partials(self) -> dict[str, list[_Located]]:
        found: dict[str, tuple[ast.Partial, _Unit]] = {}
        for item, unit in self._items:
            if isinstance(item, ast.Partial):
                name = item.name or ""
                if name in found:
                    _fail(SchemaSyntaxError, f"found duplicate partial `{name}`", item.span, unit)
                found[name] = (item, unit)
        resolved: dict[str, list[_Located]] = {}

        def resolve(name: str, chain: list[str]) -> list[_Located]:
            if name in resolved:
                return resolved[name]
            partial, unit = found[name]
            members = self._expand(
                partial.members, unit, found, lambda ref: resolve(ref, [*chain, name]), chain=[*chain, name]
            )
            resolved[name] = members
            return members

        for name in found:
            resolve(name, [])
        return resolved

    def _expand(
        self,
        members: Iterable[ast.Member],
        unit: _Unit,
        known: dict[str, tuple[ast.Partial, _Unit]] | dict[str, list[_Located]],
        resolve: Callable[[str], list[_Located]],
        chain: list[str] | None = None,
    ) -> list[_Located]:
        result: list[_Located] = []
        for member in members:
            if not isinstance(member, ast.PartialRef):
                result.append((member, unit))
                continue
            ref = member.name or ""
            if ref not in known:
                _fail(SchemaSyntaxError, f"could not find partial reference `{ref}`", member.span, unit)
            if chain is not None and ref in chain:
                cycle = " -> ".join(f"`{n}`" for n in [*chain[chain.index(ref) :], ref])
                _fail(SchemaSyntaxError, f"could not resolve partials: cycle {cycle}", member.span, unit)
            result.extend(resolve(ref))
        return result

    # -- definitions ------------------------------------------------------------------------

    def _definition(
        self, node: ast.Definition, unit: _Unit, partials: dict[str, list[_Located]]
    ) -> ir.Definition:
        name = self._type_name(node.name or "", node.span, unit, "object definition")
        relations: dict[str, ir.Relation] = {}
        permissions: dict[str, ir.Permission] = {}
        for member, member_unit in self._expand(node.members, unit, partials, partials.__getitem__):
            member_name = member.name or ""
            position = _position(member.span, member_unit)
            comment = normalize_comment(member.comments)
            if member_name in relations or member_name in permissions:
                _fail(
                    SchemaValidationError,
                    f"found duplicate relation/permission name `{member_name}` under definition `{name}`",
                    member.span,
                    member_unit,
                    definition=name,
                    relation=member_name,
                )
            if isinstance(member, ast.Relation):
                self._check_relation_name(member_name, member.span, member_unit, "relation", name)
                refs = member.types.types if member.types is not None else ()
                allowed = tuple(self._allowed(ref, member_unit, name, member_name) for ref in refs)
                relations[member_name] = ir.Relation(member_name, allowed, comment, position)
            else:
                assert isinstance(member, ast.Permission)
                self._check_relation_name(member_name, member.span, member_unit, "permission", name)
                assert member.expression is not None
                rewrite = self._rewrite(member.expression, member_unit, name, member_name)
                annotation = member.annotation.types if member.annotation is not None else ()
                types = tuple(self._prefixed(t.name, t.span, member_unit) for t in annotation)
                permissions[member_name] = ir.Permission(member_name, rewrite, comment, types, position)
        return ir.Definition(
            name, relations, permissions, normalize_comment(node.comments), _position(node.span, unit)
        )

    def _allowed(
        self, node: ast.SpecificTypeRef, unit: _Unit, definition: str, relation: str
    ) -> ir.AllowedSubject:
        type_name = self._type_name(node.type_name or "", node.span, unit, "type reference")
        subject_relation = node.relation if node.relation not in (None, "...") else None
        if subject_relation is not None:
            self._check_relation_name(subject_relation, node.span, unit, "relation", definition)
        caveat: str | None = None
        if node.caveat is not None:
            caveat = self._type_name(node.caveat.name or "", node.caveat.span, unit, "caveat reference")
        return ir.AllowedSubject(
            type=type_name,
            relation=subject_relation,
            wildcard=node.wildcard,
            caveat=caveat,
            expiration=node.trait is not None,
            position=_position(node.span, unit),
        )

    def _rewrite(self, node: ast.Expr, unit: _Unit, definition: str, permission: str) -> ir.Rewrite:
        if isinstance(node, ast.Identifier):
            return ir.ComputedUserset(node.name, position=_position(node.span, unit))
        if isinstance(node, ast.NilExpr):
            return ir.Nil()
        if isinstance(node, ast.SelfExpr):
            return ir.SelfRef()
        if isinstance(node, ast.ArrowExpr):
            if not isinstance(node.left, ast.Identifier):
                _fail(
                    SchemaSyntaxError,
                    "Nested arrows not yet supported",
                    node.left.span,
                    unit,
                    definition=definition,
                    relation=permission,
                )
            assert isinstance(node.right, ast.Identifier)
            position = _position(node.span, unit)
            if node.function == "all":
                return ir.Arrow(node.left.name, node.right.name, "all", position=position)
            return ir.Arrow(node.left.name, node.right.name, "any", position=position)
        if isinstance(node, ast.BinaryExpr):
            left = self._rewrite(node.left, unit, definition, permission)
            right = self._rewrite(node.right, unit, definition, permission)
            if node.op == "exclusion":
                return ir.Exclusion(left, right)
            kind = ir.Union if node.op == "union" else ir.Intersection
            children: list[ir.Rewrite] = []
            for child in (left, right):
                children.extend(child.children if isinstance(child, kind) else (child,))
            return kind(tuple(children))
        raise AssertionError(f"unexpected expression node {node!r}")  # parse errors never get here

    # -- caveats ----------------------------------------------------------------------------

    def _caveat(self, node: ast.CaveatDefinition, unit: _Unit) -> ir.CaveatDefinition:
        raw_name = node.name or ""
        parameters: dict[str, str] = {}
        for param in node.parameters:
            param_name = param.name or ""
            if param_name in parameters:
                _fail(
                    SchemaSyntaxError,
                    f"duplicate parameter `{param_name}` defined on caveat `{raw_name}`",
                    param.span,
                    unit,
                )
            assert param.type is not None
            problem = _caveat_type_problem(param.type)
            if problem:
                _fail(
                    SchemaSyntaxError,
                    f"invalid type for caveat parameter `{param_name}` on caveat `{raw_name}`: {problem}",
                    param.span,
                    unit,
                )
            parameters[param_name] = str(param.type)
        name = self._type_name(raw_name, node.span, unit, "caveat")
        assert node.expression is not None
        expression = node.expression
        problem_found = check_expression(expression.text, parameters)
        if problem_found is not None:
            span = unit.source.span(expression.span.start + problem_found.offset, expression.span.end)
            _fail(
                SchemaSyntaxError,
                f"invalid expression for caveat `{raw_name}`: {problem_found.message}",
                span,
                unit,
            )
        leading = len(expression.text) - len(expression.text.lstrip())
        start = expression.span.start + leading
        return ir.CaveatDefinition(
            name,
            tuple(ir.CaveatParameter(n, t) for n, t in parameters.items()),
            expression.text.strip(),
            normalize_comment(node.comments),
            _position(node.span, unit),
            _position(unit.source.span(start, max(start, expression.span.end)), unit),
        )


def _caveat_type_problem(node: ast.CaveatTypeRef) -> str:
    name = node.name or ""
    if name not in CAVEAT_TYPES:
        return f"unknown type `{name}`"
    wanted = CAVEAT_TYPES[name]
    if len(node.children) != wanted:
        return f"type `{name}` takes {wanted} type argument(s), found {len(node.children)}"
    for child in node.children:
        problem = _caveat_type_problem(child)
        if problem:
            return problem
    return ""


def _position(span: Span, unit: _Unit) -> ir.Position:
    return ir.Position(span.line, span.column, unit.source.name)


def compile_sources(
    text: str,
    *,
    source: str = "schema",
    import_resolver: ImportResolver | None = None,
    object_type_prefix: str | None = None,
    require_prefix: bool = False,
) -> tuple[ir.Schema, dict[str, SourceText]]:
    """:func:`compile_tree`, plus the text of every file read (by source name) for excerpts."""
    compiler = _Compiler(object_type_prefix, require_prefix, import_resolver)
    compiler.load(text, source, posixpath.normpath(source) if source else "")
    return compiler.build(), compiler.sources


def compile_tree(
    text: str,
    *,
    source: str = "schema",
    import_resolver: ImportResolver | None = None,
    object_type_prefix: str | None = None,
    require_prefix: bool = False,
) -> ir.Schema:
    """Parse and compile ``text`` (and whatever it imports) without cross-reference checks.

    ``source`` names the text in errors and positions; relative imports resolve against its
    directory. ``object_type_prefix`` is added to unprefixed definition, caveat and type names;
    with ``require_prefix`` an unprefixed name is an error instead (SpiceDB's ``nil`` prefix).
    """
    schema, _ = compile_sources(
        text,
        source=source,
        import_resolver=import_resolver,
        object_type_prefix=object_type_prefix,
        require_prefix=require_prefix,
    )
    return schema
