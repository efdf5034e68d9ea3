"""The schema language: source text to tokens, AST, compiled IR, validation and printing.

The public functions::

    parse(text, source="schema") -> ast.File                    # raises SchemaSyntaxError
    compile_schema(text, *, source="schema", import_resolver=None,
                   object_type_prefix=None, require_prefix=False, validate=True) -> ir.Schema
    print_schema(schema) -> str                                  # canonical text, round-trips
    lint(schema) -> list[SchemaWarning]                          # SpiceDB's development warnings
    file_import_resolver(root_dir) -> ImportResolver             # for ``import "x.zed"``

``schema_warnings`` is another name for ``lint``; ``problems``/``validate`` run the checks of
:mod:`zanzi.schema.validate` on an already compiled schema.
"""

from __future__ import annotations

from zanzi.errors import SchemaSyntaxError, SchemaValidationError
from zanzi.schema import ast, ir
from zanzi.schema.caveats import compile_caveat
from zanzi.schema.compiler import compile_sources
from zanzi.schema.imports import ImportResolver, file_import_resolver, mapping_import_resolver
from zanzi.schema.parser import parse
from zanzi.schema.printer import print_schema
from zanzi.schema.validate import SchemaWarning, lint, problems, validate
from zanzi.schema.validate import validate as _validate_schema

schema_warnings = lint

__all__ = [
    "ImportResolver",
    "SchemaWarning",
    "ast",
    "compile_schema",
    "file_import_resolver",
    "ir",
    "lint",
    "mapping_import_resolver",
    "parse",
    "print_schema",
    "problems",
    "schema_warnings",
    "validate",
]


def compile_schema(
    text: str,
    *,
    source: str = "schema",
    import_resolver: ImportResolver | None = None,
    object_type_prefix: str | None = None,
    require_prefix: bool = False,
    validate: bool = True,
) -> ir.Schema:
    """Parse, compile and (unless ``validate=False``) validate a schema; raise on the first problem.

    * ``source`` names the text in errors and positions; relative imports resolve against its
      directory.
    * ``import_resolver(path) -> text`` reads ``import``-ed files (see :func:`file_import_resolver`).
    * ``object_type_prefix`` is put in front of every unprefixed definition, caveat and type name,
      as SpiceDB's ``ObjectTypePrefix`` option does; ``require_prefix=True`` makes an unprefixed
      name an error instead.
    * ``validate=False`` skips the cross-reference checks of :mod:`zanzi.schema.validate` (the
      compiler's own checks -- names, duplicates, partials, imports, caveat types -- still run).

    Raises :class:`~zanzi.errors.SchemaSyntaxError` (INVALID_ARGUMENT) for what SpiceDB reports
    as a parse error: text that does not parse, and what its compiler rejects (names, prefixes,
    nested arrows, partials, imports, caveat parameter types and expressions). Raises
    :class:`~zanzi.errors.SchemaValidationError` (FAILED_PRECONDITION) for what its type system
    rejects: duplicate names, unknown types, relations and caveats, bad arrows, self-references.
    Both carry ``line``, ``column``, ``source`` and ``excerpt``.
    """
    schema, sources = compile_sources(
        text,
        source=source,
        import_resolver=import_resolver,
        object_type_prefix=object_type_prefix,
        require_prefix=require_prefix,
    )
    if validate:
        try:
            _validate_schema(schema)
            for caveat in schema.caveats.values():
                compile_caveat(caveat)  # full CEL type check
        except (SchemaValidationError, SchemaSyntaxError) as error:
            file = sources.get(error.details.get("source") or source)
            line, column = error.details.get("line"), error.details.get("column")
            if file is None or line is None or column is None or "excerpt" in error.details:
                raise
            excerpt = file.excerpt(line, column)
            raise type(error)(error.message, **{**error.details, "excerpt": excerpt}) from None
    return schema
