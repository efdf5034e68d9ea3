"""Documentation guards: every CLI command and error class is documented, the README's two
commands are the ones CI runs, and the README's Python example runs."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from zanzi import errors
from zanzi.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The body of the README's ``## <title>`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match is not None, f"README has no '## {title}' section"
    return match.group(1)


def commands(group: click.Group, prefix: str = "zanzi") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


ALL_COMMANDS = list(commands(cli))


def test_the_cli_has_the_expected_commands() -> None:
    names = {path for path, _ in ALL_COMMANDS}
    assert {
        "zanzi validate",
        "zanzi schema write",
        "zanzi schema read",
        "zanzi relationship create",
        "zanzi relationship touch",
        "zanzi relationship delete",
        "zanzi relationship read",
        "zanzi relationship delete-matching",
        "zanzi check",
        "zanzi expand",
        "zanzi lookup-resources",
        "zanzi lookup-subjects",
        "zanzi import",
        "zanzi export",
        "zanzi watch",
        "zanzi demo",
    } <= names


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_command_has_help(path: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts[0]} has no help text"


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_command_is_in_the_readme_cli_section(path: str, command: click.Command) -> None:
    assert f"`{path}" in section("Command line"), f"{path} is missing from the README's CLI section"


def test_every_error_class_is_in_the_readme_errors_section() -> None:
    text = section("Errors")
    classes = [
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ZanziError)
    ]
    assert len(classes) > 20
    missing = [name for name in classes if f"`{name}`" not in text]
    assert not missing, f"error classes missing from the README's Errors section: {missing}"


def _first_section_commands() -> list[str]:
    body = README.split("\n## ", 2)[1]
    return [
        line.strip()
        for block in re.findall(r"```[a-z]*\n(.*?)```", body, re.S)
        for line in block.splitlines()
        if line.strip()
    ]


def test_readme_starts_with_exactly_two_commands() -> None:
    title, sentence, *_ = README.split("\n")
    assert title == "# Zanzi"
    assert README.split("\n## ", 1)[0].count("\n\n") == 1  # title, then one sentence, then the section
    assert _first_section_commands() == [
        "python3 -m venv .venv && .venv/bin/pip install -e . "
        "&& .venv/bin/zanzi serve --grpc-preshared-key somerandomkey",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q",
    ]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script
    assert _first_section_commands()[1] in script.splitlines()


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = section("The Python API")
    example = re.search(r"```python\n(.*?)```", code, re.S)
    assert example is not None
    exec(compile(example.group(1), "README.md", "exec"), {})
    assert (tmp_path / "authz.db").exists()
