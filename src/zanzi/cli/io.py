"""Relationships in and out in bulk: ``zanzi import``, ``zanzi export`` and ``zanzi watch``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zanzi.cli.main import consistency_options, err_console, read_lines, state
from zanzi.errors import InvalidArgument, InvalidRelationship
from zanzi.model import Consistency, Relationship

__all__ = ["COMMANDS", "export", "import_", "watch"]


@click.command("import")
@click.argument("file", metavar="FILE|-")
def import_(file: str) -> None:
    """Create the relationships in FILE (- for stdin), one per line; print the count and token.

    Blank lines and // comments are skipped. Every line is parsed before anything is written;
    the import is one transaction: a relationship that exists already is an error (as SpiceDB's
    bulk import) and nothing is imported.
    """
    relationships: list[Relationship] = []
    name = "stdin" if file == "-" else file
    for number, line in read_lines(file):
        try:
            relationships.append(Relationship.parse(line))
        except InvalidRelationship as exc:
            raise InvalidRelationship(f"{name}:{number}: {exc.message}", **exc.details) from None
    result = state().service().import_relationships(relationships)
    err_console().print(f"imported {result.count} relationship(s)", style="dim")
    click.echo(result.token)


@click.command("export")
@click.argument("file", required=False, metavar="[FILE]")
@consistency_options
def export(file: str | None, consistency: Consistency | None) -> None:
    """Print every relationship, one per line (or write them to FILE), at one revision.

    The output is what `zanzi import` reads.
    """
    stream = state().service().export_relationships(consistency)
    if file is None or file == "-":
        for rel in stream:
            click.echo(str(rel))
        return
    count = 0
    try:
        with Path(file).open("w", encoding="utf-8") as out:
            for rel in stream:
                out.write(f"{rel}\n")
                count += 1
    except OSError as exc:
        raise InvalidArgument(f"cannot write {file}: {exc.strerror or exc}", path=file) from None
    err_console().print(f"exported {count} relationship(s) to {file} at {stream.token}", style="dim")


@click.command("watch")
@click.option("--after", "after", metavar="TOKEN", help="Start after this token's revision (default: now).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after SECONDS without a change (default: run until interrupted).",
)
@click.option(
    "--type",
    "object_types",
    multiple=True,
    metavar="TYPE",
    help="Only changes to resources of TYPE (repeatable).",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FILTER",
    help="Only changes to relationships matching FILTER (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per revision.")
def watch(
    after: str | None,
    timeout: float | None,
    object_types: tuple[str, ...],
    filters: tuple[str, ...],
    as_json: bool,
) -> None:
    """Print committed changes as they happen, in revision order.

    Each change prints as "TOUCH <relationship>" or "DELETE <relationship>"; after the changes
    of one revision comes "token: <token>", the token to resume from with --after.
    """
    events = (
        state()
        .service()
        .watch(
            after,
            object_types=object_types,
            filters=filters,
            timeout=timeout,
            poll_interval=0.2 if timeout is not None else 1.0,
        )
    )
    for event in events:
        if as_json:
            payload = {
                "token": event.token,
                "schema_changed": event.schema_changed,
                "changes": [
                    {"operation": c.kind.name, "relationship": str(c.relationship)} for c in event.changes
                ],
            }
            click.echo(json.dumps(payload))
            continue
        if event.schema_changed:
            click.echo("SCHEMA changed")
        for change in event.changes:
            click.echo(f"{change.kind.name} {change.relationship}")
        click.echo(f"token: {event.token}")


COMMANDS: list[click.Command] = [import_, export, watch]
