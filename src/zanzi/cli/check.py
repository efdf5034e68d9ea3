"""The questions: ``zanzi check``, ``expand``, ``lookup-resources`` and ``lookup-subjects``."""

from __future__ import annotations

import json
from typing import Any

import click

from zanzi.api.results import LookupSubjectResult
from zanzi.cli.main import consistency_options, context_option, parse_context, state
from zanzi.model import Consistency, ExpandTree, Permissionship, SetOperation

__all__ = ["COMMANDS", "check", "expand", "lookup_resources", "lookup_subjects", "tree_to_dict"]


def describe(permissionship: Permissionship, missing: tuple[str, ...]) -> str:
    """``true``, ``false`` or ``conditional (missing: a, b)``."""
    if permissionship is Permissionship.HAS_PERMISSION:
        return "true"
    if permissionship is Permissionship.NO_PERMISSION:
        return "false"
    return f"conditional (missing: {', '.join(missing)})" if missing else "conditional"


@click.command("check")
@click.argument("resource", metavar="RESOURCE")
@click.argument("permission", metavar="PERMISSION")
@click.argument("subject", metavar="SUBJECT")
@context_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object with permissionship and token.")
@click.option("--fail-on-deny", is_flag=True, help="Exit with status 1 unless the permission is granted.")
@consistency_options
def check(
    resource: str,
    permission: str,
    subject: str,
    context: str | None,
    as_json: bool,
    fail_on_deny: bool,
    consistency: Consistency | None,
) -> None:
    """Does SUBJECT have PERMISSION on RESOURCE? Prints true, false or conditional.

    RESOURCE is type:id, SUBJECT is type:id or type:id#relation. Exits 0 for any answer unless
    --fail-on-deny is given.
    """
    result = (
        state()
        .service()
        .check(resource, permission, subject, consistency=consistency, context=parse_context(context))
    )
    if as_json:
        payload = {
            "resource": str(result.resource),
            "permission": result.permission,
            "subject": str(result.subject),
            "permissionship": result.permissionship.name,
            "allowed": result.allowed,
            "missing_context": list(result.missing_context),
            "token": result.token,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(describe(result.permissionship, result.missing_context))
    if fail_on_deny and not result.allowed:
        raise click.exceptions.Exit(1)


def tree_to_dict(tree: ExpandTree) -> dict[str, Any]:
    """A JSON-ready form of an expand tree."""
    node: dict[str, Any] = {
        "resource": str(tree.resource),
        "relation": tree.relation,
        "operation": tree.operation.value,
    }
    if tree.caveat is not None:
        node["caveat"] = str(tree.caveat)
    if tree.operation is SetOperation.LEAF:
        node["subjects"] = [str(s) for s in tree.subjects]
    else:
        node["children"] = [tree_to_dict(child) for child in tree.children]
    return node


@click.command("expand")
@click.argument("resource", metavar="RESOURCE")
@click.argument("permission", metavar="PERMISSION")
@click.option("--recursive", is_flag=True, help="Expand usersets down to their subjects.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree and the token as JSON.")
@consistency_options
def expand(
    resource: str, permission: str, recursive: bool, as_json: bool, consistency: Consistency | None
) -> None:
    """Print the userset tree of PERMISSION on RESOURCE (Zanzibar's Expand)."""
    result = state().service().expand(resource, permission, consistency=consistency, recursive=recursive)
    if as_json:
        click.echo(json.dumps({"tree": tree_to_dict(result.tree), "token": result.token}, indent=2))
    else:
        click.echo(result.tree.render())


@click.command("lookup-resources")
@click.argument("resource_type", metavar="TYPE")
@click.argument("permission", metavar="PERMISSION")
@click.argument("subject", metavar="SUBJECT")
@context_option
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many ids.")
@click.option("--cursor", metavar="ID", help="Continue after this resource id.")
@consistency_options
def lookup_resources(
    resource_type: str,
    permission: str,
    subject: str,
    context: str | None,
    limit: int | None,
    cursor: str | None,
    consistency: Consistency | None,
) -> None:
    """Print the ids of the TYPE resources on which SUBJECT has PERMISSION, one per line.

    A result that depends on missing caveat context is marked "(conditional, missing: ...)".
    """
    results = (
        state()
        .service()
        .lookup_resources(
            resource_type,
            permission,
            subject,
            consistency=consistency,
            context=parse_context(context),
            limit=limit,
            cursor=cursor,
        )
    )
    for r in results:
        if r.permissionship is Permissionship.CONDITIONAL_PERMISSION:
            click.echo(f"{r.resource_id} ({_conditional(r.missing_context)})")
        else:
            click.echo(r.resource_id)


def _conditional(missing: tuple[str, ...]) -> str:
    return f"conditional, missing: {', '.join(missing)}" if missing else "conditional"


def format_subject(result: LookupSubjectResult) -> str:
    """``user:alice``, ``user:* - {user:a, user:b}``, with conditional parts marked."""
    text = str(result.subject)
    if result.excluded:
        parts = []
        for ex in result.excluded:
            part = str(ex.subject)
            if ex.permissionship is Permissionship.CONDITIONAL_PERMISSION:
                part += "[conditional]"
            parts.append(part)
        text += " - {" + ", ".join(parts) + "}"
    if result.permissionship is Permissionship.CONDITIONAL_PERMISSION:
        text += f" ({_conditional(result.missing_context)})"
    return text


@click.command("lookup-subjects")
@click.argument("resource", metavar="RESOURCE")
@click.argument("permission", metavar="PERMISSION")
@click.argument("subject_type", metavar="SUBJECT_TYPE[#relation]")
@context_option
@consistency_options
def lookup_subjects(
    resource: str, permission: str, subject_type: str, context: str | None, consistency: Consistency | None
) -> None:
    """Print the subjects of SUBJECT_TYPE that have PERMISSION on RESOURCE, one per line.

    A wildcard prints with the subjects it excludes: user:* - {user:a, user:b}.
    """
    type_name, _, relation = subject_type.partition("#")
    results = (
        state()
        .service()
        .lookup_subjects(
            resource,
            permission,
            type_name,
            subject_relation=None if relation in ("", "...") else relation,
            consistency=consistency,
            context=parse_context(context),
        )
    )
    for r in results:
        click.echo(format_subject(r))


COMMANDS: list[click.Command] = [check, expand, lookup_resources, lookup_subjects]
