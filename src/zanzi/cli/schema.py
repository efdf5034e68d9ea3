"""``zanzi schema write|read``: store and show the schema."""

from __future__ import annotations

from pathlib import Path

import click

from zanzi.cli.main import consistency_options, read_text, state
from zanzi.model import Consistency
from zanzi.schema import ast, compile_schema, file_import_resolver, parse, print_schema

__all__ = ["COMMANDS", "schema"]


@click.group()
def schema() -> None:
    """Write or read the schema (SpiceDB's schema language)."""


@schema.command("write")
@click.argument("file", metavar="FILE")
def write(file: str) -> None:
    """Compile, validate and store the schema in FILE (- for stdin); print the token.

    A change that would leave stored relationships without a meaning is refused.
    """
    token = state().service().write_schema(prepare(read_text(file), file))
    click.echo(token)


def prepare(text: str, file: str) -> str:
    """The schema text to store. It is compiled here first so that errors name the file, and so
    that ``import "other.zed"`` resolves next to it; a schema with imports is stored as the
    canonical text of the whole compiled schema, any other exactly as written."""
    path = Path.cwd() / "stdin" if file == "-" else Path(file)
    schema = compile_schema(text, source=path.name, import_resolver=file_import_resolver(path.parent))
    if any(isinstance(item, ast.Import) for item in parse(text, source=path.name).items):
        return print_schema(schema)
    return text


@schema.command("read")
@consistency_options
def read(consistency: Consistency | None) -> None:
    """Print the stored schema."""
    result = state().service().read_schema(consistency)
    click.echo(result.text.rstrip("\n"))


COMMANDS: list[click.Command] = [schema]
