"""Golden files: each ``*.zed`` here has a ``*.expected`` with its parse tree (SpiceDB's format)
and either the canonical text of the compiled schema or the error it raises. Refresh them with
``pytest tests/golden --update-golden`` and review the diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from zanzi.errors import ZanziError
from zanzi.schema import compile_schema, print_schema
from zanzi.schema.ast import dump
from zanzi.schema.parser import parse_tree

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.zed"))


def render(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    parts = ["== parse tree ==", dump(parse_tree(text, source=path.name))]
    try:
        schema = compile_schema(text, source=path.name)
    except ZanziError as error:
        parts += ["== error ==", f"{type(error).__name__}: {error.message}"]
        excerpt = error.details.get("excerpt")
        if excerpt:
            parts.append(excerpt)
    else:
        parts += ["== compiled ==", print_schema(schema).rstrip("\n")]
    return "\n".join(parts) + "\n"


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden(path: Path, update_golden: bool) -> None:
    expected_file = path.with_suffix(".expected")
    got = render(path)
    if update_golden:
        expected_file.write_text(got, encoding="utf-8")
        return
    assert expected_file.exists(), f"{expected_file.name} is missing; run pytest with --update-golden"
    assert got == expected_file.read_text(encoding="utf-8")
