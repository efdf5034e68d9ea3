"""The ``zanzi`` click group, its global options, and the helpers every command shares.

Commands are thin: they parse their arguments, call one :class:`~zanzi.api.service.Service`
method and print the result. Errors are handled once, here: a :class:`~zanzi.errors.ZanziError`
prints ``error: <message>`` on stderr and exits with :func:`zanzi.errors.exit_code` (2 for
invalid input, 1 otherwise); bad flags are click's own usage errors (exit 2).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from zanzi.errors import InternalError, InvalidArgument, InvalidContext, ZanziError, exit_code
from zanzi.model import Consistency

if TYPE_CHECKING:
    from zanzi.api.service import Service

__all__ = [
    "DEFAULT_DATASTORE",
    "CliState",
    "ZanziGroup",
    "cli",
    "consistency_options",
    "context_option",
    "err_console",
    "main",
    "out_console",
    "parse_context",
    "read_lines",
    "read_text",
    "report_error",
    "state",
]

DEFAULT_DATASTORE = "sqlite:///zanzi.db"
DEBUG_ENV = "ZANZI_DEBUG"

F = TypeVar("F", bound=Callable[..., Any])


# -- consoles ---------------------------------------------------------------------------------


def out_console() -> Console:
    """A rich console on the current stdout: no wrapping, no markup guessing, no highlighting,
    so relationship strings (which contain ``[...]``) print exactly as they are."""
    return Console(soft_wrap=True, highlight=False, markup=False)


def err_console() -> Console:
    """Like :func:`out_console`, on stderr."""
    return Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def report_error(exc: ZanziError) -> None:
    """Print ``error: <message>`` on stderr; schema errors also get their position and excerpt."""
    message = exc.message
    line, column = exc.details.get("line"), exc.details.get("column")
    if isinstance(line, int) and f"{line}:" not in message and f"line {line}" not in message:
        where = f"line {line}" + (f", column {column}" if isinstance(column, int) else "")
        message = f"{where}: {message}"
    text = Text("error: ", style="bold red")
    text.append(message)
    console = err_console()
    console.print(text)
    excerpt = exc.details.get("excerpt")
    if isinstance(excerpt, str) and excerpt.strip():
        console.print(Text(excerpt.rstrip("\n"), style="dim"))


# -- state shared by the commands -------------------------------------------------------------


@dataclass(slots=True)
class CliState:
    """What the group hands to its commands: the datastore URL and, once opened, the service."""

    datastore: str = DEFAULT_DATASTORE
    datastore_given: bool = False  # named on the command line (not defaulted, not from the env)
    _service: Service | None = field(default=None, repr=False)

    def service(self) -> Service:
        """The service on ``--datastore``, opened on first use and closed when the command ends."""
        if self._service is None:
            from zanzi.api.service import Service

            self._service = Service.open(self.datastore)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            service, self._service = self._service, None
            service.close()


def state() -> CliState:
    """The :class:`CliState` of the running command."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliState)
    if obj is None:  # a command invoked on its own, outside the group (tests do this)
        obj = ctx.ensure_object(CliState)
        ctx.call_on_close(obj.close)
    return obj


# -- shared options ---------------------------------------------------------------------------


def consistency_options(func: F) -> F:
    """Add ``--consistency-full``, ``--consistency-at-least TOKEN`` and
    ``--consistency-at-exactly TOKEN`` (at most one; default minimize_latency) and pass the
    resulting :class:`~zanzi.model.Consistency` (``None`` for the default) as ``consistency``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["consistency"] = _consistency(
            kwargs.pop("consistency_full"),
            kwargs.pop("consistency_at_least"),
            kwargs.pop("consistency_at_exactly"),
        )
        return func(*args, **kwargs)

    options = [
        click.option(
            "--consistency-full",
            "consistency_full",
            is_flag=True,
            help="Read the newest committed revision (fully consistent).",
        ),
        click.option(
            "--consistency-at-least",
            "consistency_at_least",
            metavar="TOKEN",
            help="Read a revision at least as fresh as TOKEN (prevents the new-enemy problem).",
        ),
        click.option(
            "--consistency-at-exactly",
            "consistency_at_exactly",
            metavar="TOKEN",
            help="Read exactly the revision of TOKEN (a snapshot read).",
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def _consistency(full: bool, at_least: str | None, exactly: str | None) -> Consistency | None:
    given = (
        ("--consistency-full", full),
        ("--consistency-at-least", at_least),
        ("--consistency-at-exactly", exactly),
    )
    chosen = [name for name, value in given if value is not None and value is not False]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} are mutually exclusive; give at most one")
    if full:
        return Consistency.fully_consistent()
    if at_least is not None:
        if not at_least:
            raise click.BadParameter("the token is empty", param_hint="--consistency-at-least")
        return Consistency.at_least_as_fresh(at_least)
    if exactly is not None:
        if not exactly:
            raise click.BadParameter("the token is empty", param_hint="--consistency-at-exactly")
        return Consistency.at_exact_snapshot(exactly)
    return None


def context_option(func: F) -> F:
    """``--context JSON``: caveat context, a JSON object."""
    return click.option(
        "--context",
        "context",
        metavar="JSON",
        help='Caveat context as a JSON object, for example \'{"ip": "10.0.0.1"}\'.',
    )(func)


def parse_context(text: str | None) -> dict[str, Any] | None:
    """Parse ``--context``; a bad value raises :class:`InvalidContext` (exit 2)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidContext(
            f"--context is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise InvalidContext(f"--context must be a JSON object, not {type(value).__name__}")
    return value


# -- input files ------------------------------------------------------------------------------


def read_text(path: str) -> str:
    """The text of ``path`` (``-`` for stdin); an unreadable file is :class:`InvalidArgument`."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror or exc}", path=path) from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"cannot read {path}: not UTF-8 text", path=path) from None


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """The meaningful lines of ``path`` (``-`` for stdin) with their 1-based numbers: stripped,
    skipping blank lines and ``//`` comments."""
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("//"):
            yield number, line


# -- the group --------------------------------------------------------------------------------


class ZanziGroup(click.Group):
    """A click group that knows command aliases and turns Zanzi's errors into exit codes."""

    aliases: dict[str, str] = {"rel": "relationship"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd is not None else None), cmd, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # `zanzi export | head`: click's main stops quietly
            raise
        except ZanziError as exc:
            report_error(exc)
            raise click.exceptions.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as exc:  # a bug: say so briefly, unless debugging
            if os.environ.get(DEBUG_ENV):
                raise
            report_error(
                InternalError(
                    f"internal error ({type(exc).__name__}: {exc}); set {DEBUG_ENV}=1 for the traceback"
                )
            )
            raise click.exceptions.Exit(1) from None


@click.group(cls=ZanziGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--datastore",
    metavar="URL",
    envvar="ZANZI_DATASTORE",
    default=DEFAULT_DATASTORE,
    show_default=True,
    show_envvar=True,
    help="Datastore URL: sqlite:///relative.db, sqlite:////absolute.db or memory://.",
)
@click.version_option(package_name="zanzi", prog_name="zanzi")
@click.pass_context
def cli(ctx: click.Context, datastore: str) -> None:
    """Zanzi: Google Zanzibar-style authorization, compatible with SpiceDB.

    Write a schema, write relationships, then ask questions: check, expand, lookup-resources,
    lookup-subjects. Every write prints a consistency token; pass it to a read with
    --consistency-at-least to make sure the read sees that write.
    """
    source = ctx.get_parameter_source("datastore")
    obj = CliState(datastore, datastore_given=source is click.core.ParameterSource.COMMANDLINE)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def _register() -> None:
    # The command modules import their helpers from this module, so they are loaded once `cli`
    # exists; each lists its top-level commands in COMMANDS.
    from zanzi.cli import check, demo, io, migrate, rel, schema, serve, validate

    for module in (schema, rel, check, io, validate, demo, migrate, serve):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """The ``zanzi`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="zanzi")


if __name__ == "__main__":  # pragma: no cover
    main()
