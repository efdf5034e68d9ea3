"""SpiceDB's parser test suite (``pkg/schemadsl/parser/tests``): every input parses or fails as it
does in SpiceDB, and our parse tree prints exactly as SpiceDB's ``*.zed.expected`` trees (node
kinds, names, nesting, error nodes and their messages, comments, and offsets)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from support.paths import SHARED
from zanzi.errors import SchemaSyntaxError
from zanzi.schema import parse
from zanzi.schema.ast import dump
from zanzi.schema.parser import parse_tree


def _shared_dir() -> Path:
    return SHARED


TESTS = _shared_dir() / "conformance" / "spicedb" / "schemadsl" / "parser-tests"

pytestmark = pytest.mark.skipif(
    not TESTS.is_dir(), reason=f"SpiceDB parser tests not found at {TESTS} (set ZANZI_SHARED_DIR)"
)


def _cases() -> list[tuple[str, str]]:
    """(file stem, test name) from INDEX.tsv; the test name is the tree's ``input-source``."""
    if not TESTS.is_dir():
        return []
    rows = (TESTS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(row.split("\t")[0], row.split("\t")[1]) for row in rows if row.strip()]


CASES = _cases()


def _read(stem: str) -> tuple[str, str]:
    text = (TESTS / f"{stem}.zed").read_text(encoding="utf-8")
    expected = (TESTS / f"{stem}.zed.expected").read_text(encoding="utf-8")
    return text, expected


def test_the_index_covers_every_input_file() -> None:
    assert sorted(stem for stem, _ in CASES) == sorted(p.stem for p in TESTS.glob("*.zed"))
    assert len(CASES) == 65


def _expected_errors(expected: str) -> list[str]:
    return [
        line.split("error-message = ", 1)[1] for line in expected.splitlines() if "error-message = " in line
    ]


@pytest.mark.parametrize(("stem", "name"), CASES, ids=[stem for stem, _ in CASES])
def test_parse_outcome_matches_spicedb(stem: str, name: str) -> None:
    text, expected = _read(stem)
    if "NodeTypeError" not in expected:
        assert parse(text, source=name).ok
        return
    with pytest.raises(SchemaSyntaxError) as raised:
        parse(text, source=name)
    error = raised.value
    tree = parse_tree(text, source=name)
    first = tree.diagnostics[0]
    # The exception reports the first error found, where it was found, with an excerpt...
    assert error.message.startswith(f"parse error in `{name}`, line {error.line}, column {error.column}: ")
    assert first.message in error.message
    assert error.excerpt.splitlines()[-1].endswith("^")
    # ...and every error the parser found is one SpiceDB's parser finds too.
    assert sorted(e.message for e in tree.diagnostics) == sorted(_expected_errors(expected))
    assert len(error.details.get("errors", [])) == len(tree.diagnostics) - 1


@pytest.mark.parametrize(("stem", "name"), CASES, ids=[stem for stem, _ in CASES])
def test_parse_tree_matches_spicedb_exactly(stem: str, name: str) -> None:
    text, expected = _read(stem)
    got = dump(parse_tree(text, source=name))
    if got.rstrip("\n") != expected.rstrip("\n"):
        diff = "\n".join(
            difflib.unified_diff(expected.splitlines(), got.splitlines(), "spicedb", "zanzi", n=2)
        )
        pytest.fail(f"parse tree differs from SpiceDB's:\n{diff}")


def test_error_cases_report_every_error_node_in_order() -> None:
    """The exception lists the other errors too, in the order the parser met them."""
    text, expected = _read("permission_type_annotation_double_colon")
    with pytest.raises(SchemaSyntaxError) as raised:
        parse(text)
    messages = [raised.value.message.split(": ", 1)[1]] + [e["message"] for e in raised.value.errors]
    assert messages == [
        "Expected identifier, found token TokenTypeColon",
        "Expected type identifier in type annotation",
        "Expected one of: [TokenTypeEquals], found: TokenTypeColon",
        "Expected end of statement or definition, found: TokenTypeColon",
        "Unexpected token at root level: TokenTypeColon",
    ]
    assert sorted(messages) == sorted(_expected_errors(expected))


def test_counts_of_error_and_success_cases() -> None:
    failing = [stem for stem, _ in CASES if "NodeTypeError" in _read(stem)[1]]
    assert len(failing) == 29
