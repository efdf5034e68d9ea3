"""``zanzi demo``: a Google-Docs-like model on an embedded database, with every API at work."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from zanzi.api.service import Service
from zanzi.cli.check import format_subject
from zanzi.cli.main import state
from zanzi.model import Consistency, ExpandTree, Operation, SetOperation

__all__ = ["COMMANDS", "DEMO_RELATIONSHIPS", "DEMO_SCHEMA", "demo"]

DEMO_SCHEMA = """\
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation owner: user | group#member
    relation editor: user | group#member
    relation viewer: user | group#member
    permission edit = editor + owner
    permission view = viewer + edit + parent->view
}

definition document {
    relation parent: folder
    relation owner: user
    relation editor: user | group#member
    relation viewer: user | user:* | group#member
    relation banned: user
    permission edit = editor + owner
    permission view = (viewer + edit + parent->view) - banned
}
"""

# Groups nest three levels deep (backend, frontend -> engineering -> company); folders form a
# tree (specs -> engineering -> root); documents live in folders.
DEMO_RELATIONSHIPS = [
    "group:backend#member@user:carol",
    "group:backend#member@user:dave",
    "group:frontend#member@user:erin",
    "group:engineering#member@user:bob",
    "group:engineering#member@group:backend#member",
    "group:engineering#member@group:frontend#member",
    "group:sales#member@user:frank",
    "group:sales#member@user:grace",
    "group:company#member@user:alice",
    "group:company#member@group:engineering#member",
    "group:company#member@group:sales#member",
    "folder:root#owner@user:alice",
    "folder:root#viewer@group:company#member",
    "folder:engineering#parent@folder:root",
    "folder:engineering#editor@group:engineering#member",
    "folder:specs#parent@folder:engineering",
    "folder:specs#owner@user:bob",
    "folder:sales#parent@folder:root",
    "folder:sales#editor@group:sales#member",
    "folder:hr#owner@user:heidi",
    "document:handbook#parent@folder:root",
    "document:handbook#owner@user:alice",
    "document:roadmap#parent@folder:engineering",
    "document:roadmap#owner@user:bob",
    "document:api-spec#parent@folder:specs",
    "document:api-spec#owner@user:carol",
    "document:api-spec#editor@group:backend#member",
    "document:design#parent@folder:specs",
    "document:design#editor@user:erin",
    "document:forecast#parent@folder:sales",
    "document:forecast#owner@user:frank",
    "document:salaries#parent@folder:hr",
    "document:salaries#viewer@user:ivan",
    "document:press-release#parent@folder:sales",
    "document:press-release#viewer@user:*",
    "document:press-release#banned@user:mallory",
]

# (resource, permission, subject, why)
DEMO_CHECKS = [
    ("document:api-spec", "edit", "user:dave", "dave is in backend, and backend members edit api-spec"),
    (
        "document:design",
        "view",
        "user:dave",
        "dave is in backend, in engineering, in company; company views folder root > engineering > specs",
    ),
    ("document:design", "edit", "user:dave", "edit is not inherited from folders"),
    ("document:forecast", "view", "user:grace", "sales edits folder sales, so it can view what is in it"),
    ("document:salaries", "view", "user:dave", "folder hr is not shared with the company"),
    ("document:salaries", "view", "user:ivan", "a direct viewer"),
    ("document:press-release", "view", "user:zoe", "public: viewer user:*"),
    ("document:press-release", "view", "user:mallory", "public, but mallory is banned"),
]

REVOKED = "group:backend#member@user:dave"


@contextlib.contextmanager
def _demo_service(url: str | None) -> Iterator[tuple[Service, str]]:
    if url is not None:
        with Service.open(url) as service:
            yield service, url
        return
    with tempfile.TemporaryDirectory(prefix="zanzi-demo-") as tmp:
        temp_url = f"sqlite:///{Path(tmp, 'demo.db').as_posix()}"
        with Service.open(temp_url) as service:
            yield service, temp_url + " (temporary)"


def _tree(tree: ExpandTree, parent: Tree | None = None) -> Tree:
    label = f"[bold]{escape(str(tree.resource))}#{escape(tree.relation)}[/]"
    if tree.operation is SetOperation.LEAF:
        subjects = ", ".join(escape(str(s)) for s in tree.subjects) or "(none)"
        label += f" -> [cyan]{subjects}[/]"
    else:
        label += f" [magenta]{tree.operation.value}[/]"
    node = Tree(label) if parent is None else parent.add(label)
    for child in tree.children:
        _tree(child, node)
    return node


def _check_line(
    console: Console,
    service: Service,
    resource: str,
    permission: str,
    subject: str,
    why: str,
    consistency: Consistency | None = None,
) -> bool:
    allowed = service.check(resource, permission, subject, consistency=consistency).allowed
    mark = "[bold green]✔ allowed[/]" if allowed else "[bold red]✘ denied [/]"
    question = escape(f"{resource}#{permission}@{subject}")
    console.print(f"  {mark}  {question}" + (f"  [dim]({escape(why)})[/]" if why else ""))
    return allowed


@click.command("demo")
@click.option(
    "--datastore",
    "datastore",
    metavar="URL",
    help="Run on this datastore instead of a fresh temporary SQLite file.",
)
def demo(datastore: str | None) -> None:
    """Show Zanzi at work on a Google-Docs-like model: schema, nested groups, folders, checks,
    lookups, an expand tree and a snapshot read after a revoke (the "new enemy" problem)."""
    if datastore is None:
        group = state()
        datastore = group.datastore if group.datastore_given else None
    console = Console(soft_wrap=True, highlight=False)
    started = time.perf_counter()
    with _demo_service(datastore) as (service, where):
        console.rule("[bold]Zanzi demo[/]")
        console.print(f"datastore: {escape(where)}")

        console.rule("1. schema")
        service.write_schema(DEMO_SCHEMA)
        console.print(escape(service.read_schema(Consistency.fully_consistent()).text.rstrip()), style="cyan")

        console.rule("2. relationships")
        granted = service.write_relationships(DEMO_RELATIONSHIPS)
        console.print(f"wrote {len(DEMO_RELATIONSHIPS)} relationships, for example:")
        for text in DEMO_RELATIONSHIPS[3:6] + DEMO_RELATIONSHIPS[13:16]:
            console.print(f"  {escape(text)}", style="cyan")
        console.print(f"token: [dim]{escape(granted)}[/]")

        console.rule("3. check")
        fresh = Consistency.at_least_as_fresh(granted)
        for resource, permission, subject, why in DEMO_CHECKS:
            _check_line(console, service, resource, permission, subject, why, fresh)

        console.rule("4. lookup-resources: which documents can erin view?")
        ids = [
            r.resource_id
            for r in service.lookup_resources("document", "view", "user:erin", consistency=fresh)
        ]
        console.print("  " + ", ".join(ids))

        console.rule("5. lookup-subjects: which users can view document:press-release?")
        for result in service.lookup_subjects("document:press-release", "view", "user", consistency=fresh):
            console.print(f"  {escape(format_subject(result))}")
        console.rule("   ... and document:roadmap?")
        users = [
            str(r.subject)
            for r in service.lookup_subjects("document:roadmap", "view", "user", consistency=fresh)
        ]
        console.print("  " + escape(", ".join(users)))

        console.rule("6. expand: who can edit document:api-spec?")
        tree = service.expand("document:api-spec", "edit", consistency=fresh, recursive=True).tree
        console.print(_tree(tree))

        console.rule("7. new enemy: revoke, then read at the old and the new token")
        revoked = service.write_relationships([REVOKED], operation=Operation.DELETE)
        console.print(f"deleted {escape(REVOKED)}; new token: [dim]{escape(revoked)}[/]")
        for label, consistency in (
            (
                "at the old token (at_exact_snapshot: the snapshot before the revoke)",
                Consistency.at_exact_snapshot(granted),
            ),
            (
                "at the new token (at_least_as_fresh: what a client sends after the revoke)",
                Consistency.at_least_as_fresh(revoked),
            ),
        ):
            console.print(label + ":")
            members = [
                str(r.subject)
                for r in service.read_relationships("group:backend#member", consistency=consistency)
            ]
            console.print(f"  group:backend members: {escape(', '.join(members))}")
            _check_line(console, service, "document:api-spec", "edit", "user:dave", "", consistency)
        console.print("[dim]a check that carries the revoke's token never sees the old access[/]")

        console.rule()
        console.print(f"[green]done[/] in {time.perf_counter() - started:.2f}s")


COMMANDS: list[click.Command] = [demo]
