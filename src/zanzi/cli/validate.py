"""``zanzi validate``: run SpiceDB validation files (and ``.zed`` schemas), each on a fresh datastore."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from zanzi.cli.main import out_console, state
from zanzi.errors import ZanziError

if TYPE_CHECKING:
    from zanzi.api.validation import FileReport

__all__ = ["COMMANDS", "fresh_datastore", "validate"]

DEFAULT_VALIDATE_DATASTORE = "memory://"


@contextlib.contextmanager
def fresh_datastore(url: str) -> Iterator[str]:
    """A datastore URL to validate one file against. A SQLite file URL is replaced by a new
    temporary file (keeping the URL's query options), removed afterwards, so validating never
    touches an existing database; other URLs are used as they are."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite" or rest.startswith(":memory:"):
        yield url
        return
    _, qmark, query = rest.partition("?")
    with tempfile.TemporaryDirectory(prefix="zanzi-validate-") as tmp:
        yield f"sqlite:///{Path(tmp, 'validate.db').as_posix()}{qmark}{query}"


def _run(path: str, url: str) -> FileReport:
    # Imported here: the validation runner (YAML, schema imports) is only needed by this command.
    from zanzi.api.validation import FileReport, Outcome, run_file

    try:
        with fresh_datastore(url) as datastore:
            return run_file(path, datastore=datastore)
    except ZanziError as exc:
        message = str(exc)
    except UnicodeDecodeError:  # the loader only turns OSError into an outcome
        message = f"cannot read {path}: not UTF-8 text"
    report = FileReport(Path(path))
    report.outcomes.append(Outcome(False, "load", message))
    return report


@click.command("validate")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--datastore",
    "datastore",
    metavar="URL",
    help=f"Datastore to validate on (default {DEFAULT_VALIDATE_DATASTORE}, fresh for each file; a "
    "sqlite URL gets a new temporary file per file).",
)
@click.option("--fail-on-warn", is_flag=True, help="Exit with status 1 when there are warnings.")
@click.option("--verbose", "-v", is_flag=True, help="Also list the items that passed.")
def validate(files: tuple[str, ...], datastore: str | None, fail_on_warn: bool, verbose: bool) -> None:
    """Run SpiceDB validation files (schema, relationships, assertions, expected relations)
    and .zed schema files.

    Prints "FAIL <path>:<line>:<col>: <message>" for each failing item, a summary per file and
    finally "N passed, M failed". Exits 0 only when nothing failed (and, with --fail-on-warn,
    nothing warned).
    """
    if datastore is None:
        group = state()
        datastore = group.datastore if group.datastore_given else DEFAULT_VALIDATE_DATASTORE
    console = out_console()
    reports: list[FileReport] = []
    warnings = 0
    for file in files:
        report = _run(file, datastore)
        reports.append(report)
        path = Path(file)
        for outcome in report.outcomes:
            if not outcome.passed:
                console.print(Text(f"FAIL {outcome.location(path)}: {outcome.message}", style="red"))
            elif verbose:
                console.print(Text(f"ok   {outcome.location(path)}: {outcome.what}", style="green"))
        for warning in report.warnings:
            console.print(Text(f"warning: {file}: {warning}", style="yellow"))
        warnings += len(report.warnings)
        status = "ok" if report.ok else "FAILED"
        console.print(
            Text(
                f"{file}: {status} ({report.passed} passed, {report.failed} failed, "
                f"{report.relationships} relationships, {len(report.warnings)} warnings)",
                style="green" if report.ok else "bold red",
            )
        )
    passed = sum(r.passed for r in reports)
    failed = sum(r.failed for r in reports)
    console.print(
        Text(f"{passed} passed, {failed} failed", style="bold green" if failed == 0 else "bold red")
    )
    if failed or (fail_on_warn and warnings):
        raise click.exceptions.Exit(1)


COMMANDS: list[click.Command] = [validate]
