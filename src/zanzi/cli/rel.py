"""``zanzi relationship`` (alias ``zanzi rel``): create, touch, delete, read and delete-matching."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from zanzi.cli.main import consistency_options, err_console, read_lines, state
from zanzi.errors import InvalidArgument, InvalidRelationship
from zanzi.model import Consistency, Operation, Precondition, Relationship, Update

__all__ = ["COMMANDS", "relationship"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def relationship() -> None:
    """Write, read and delete relationships (alias: rel).

    A relationship reads resource_type:id#relation@subject_type:id[#subject_relation],
    for example document:readme#viewer@group:eng#member.
    """


def gather(relationships: Sequence[str], file: str | None) -> list[Relationship]:
    """The relationships named on the command line, then those in ``file``; ``-`` (as the only
    argument, or as the file) reads one per line from stdin."""
    texts: list[tuple[str, str]] = []
    args = list(relationships)
    if args == ["-"]:
        if file is not None:
            raise click.UsageError("read relationships from stdin (-) or from --file, not both")
        file, args = "-", []
    texts.extend((f"argument {i}", text) for i, text in enumerate(args, start=1))
    if file is not None:
        name = "stdin" if file == "-" else file
        texts.extend((f"{name}:{number}", line) for number, line in read_lines(file))
    if not texts:
        raise click.UsageError("give relationships as arguments, with --file FILE, or - for stdin")
    out: list[Relationship] = []
    for where, text in texts:
        try:
            out.append(Relationship.parse(text))
        except InvalidRelationship as exc:
            raise InvalidRelationship(f"{where}: {exc.message}", **exc.details) from None
    return out


def precondition_options(func: F) -> F:
    """``--precondition FILTER`` (must match) and ``--precondition-not FILTER`` (must not match),
    both repeatable, passed as ``must_match`` and ``must_not_match``."""
    func = click.option(
        "--precondition-not",
        "must_not_match",
        multiple=True,
        metavar="FILTER",
        help="Apply only if no relationship matches FILTER (repeatable).",
    )(func)
    return click.option(
        "--precondition",
        "must_match",
        multiple=True,
        metavar="FILTER",
        help="Apply only if a relationship matches FILTER (repeatable).",
    )(func)


def preconditions(must_match: Sequence[str], must_not_match: Sequence[str]) -> list[Precondition]:
    return [Precondition.must_match(f) for f in must_match] + [
        Precondition.must_not_match(f) for f in must_not_match
    ]


def _write(
    operation: Operation,
    relationships: Sequence[str],
    file: str | None,
    must_match: Sequence[str],
    must_not_match: Sequence[str],
) -> None:
    updates = [Update(operation, rel) for rel in gather(relationships, file)]
    result = state().service().write(updates, preconditions=preconditions(must_match, must_not_match))
    click.echo(result.token)


def _write_command(operation: Operation, summary: str) -> click.Command:
    @click.argument("relationships", nargs=-1, metavar="REL...")
    @click.option(
        "--file",
        "-f",
        "file",
        metavar="FILE",
        help="Read relationships from FILE (- for stdin), one per line; blank lines and // comments "
        "are skipped.",
    )
    @precondition_options
    def command(
        relationships: tuple[str, ...],
        file: str | None,
        must_match: tuple[str, ...],
        must_not_match: tuple[str, ...],
    ) -> None:
        _write(operation, relationships, file, must_match, must_not_match)

    command.__doc__ = (
        f"{summary}\n\nAll updates and preconditions apply in one transaction; prints the token of the "
        "new revision. FILTER reads type[:id][#relation][@subject_type[:id][#relation]]."
    )
    return relationship.command(operation.value)(command)


_write_command(Operation.CREATE, "Create relationships; fails if one exists already.")
_write_command(Operation.TOUCH, "Create or update relationships (upsert).")
_write_command(Operation.DELETE, "Delete relationships; deleting an absent one is not an error.")


@relationship.command("read")
@click.argument("filter", required=False, metavar="[FILTER]")
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many relationships.")
@click.option("--cursor", metavar="CURSOR", help="Continue after the cursor printed by a limited read.")
@consistency_options
def read(filter: str | None, limit: int | None, cursor: str | None, consistency: Consistency | None) -> None:
    """Print stored relationships matching FILTER, one per line, in a stable order.

    FILTER reads type[:id][#relation][@subject_type[:id][#relation]] (every part optional, at
    least one given); without FILTER every relationship is printed. After a --limit read that
    filled the limit, the cursor for the next page is printed on stderr.
    """
    service = state().service()
    if filter is None:
        if cursor is not None:
            raise InvalidArgument("--cursor needs a FILTER (it continues a filtered read)")
        stream = service.export_relationships(consistency)
    else:
        stream = service.read_relationships(filter, consistency=consistency, limit=limit, cursor=cursor)
    printed = 0
    for rel in stream:
        click.echo(str(rel))
        printed += 1
        if limit is not None and printed >= limit:
            break
    if limit is not None and printed >= limit and stream.cursor is not None and filter is not None:
        err_console().print(f"next cursor: {stream.cursor}", style="dim")


@relationship.command("delete-matching")
@click.argument("filter", metavar="FILTER")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Delete at most this many; more matches are an error unless --allow-partial.",
)
@click.option(
    "--allow-partial", is_flag=True, help="With --limit, delete up to the limit and report partial."
)
@precondition_options
def delete_matching(
    filter: str,
    limit: int | None,
    allow_partial: bool,
    must_match: tuple[str, ...],
    must_not_match: tuple[str, ...],
) -> None:
    """Delete every relationship matching FILTER, atomically; print the count and the token."""
    if allow_partial and limit is None:
        raise click.UsageError("--allow-partial needs --limit")
    result = (
        state()
        .service()
        .delete_relationships(
            filter,
            preconditions=preconditions(must_match, must_not_match),
            limit=limit,
            allow_partial=allow_partial,
        )
    )
    suffix = " (partial: more relationships match)" if result.partial else ""
    err_console().print(f"deleted {result.deleted} relationship(s){suffix}", style="dim")
    click.echo(result.token)


COMMANDS: list[click.Command] = [relationship]
