"""Composable schemas: SpiceDB's importer scenarios (``pkg/schemadsl/compiler/importer-test``) and
the file-system import resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.paths import SHARED
from zanzi.errors import SchemaSyntaxError, SchemaValidationError, ZanziError
from zanzi.schema import compile_schema, file_import_resolver, mapping_import_resolver


def _shared_dir() -> Path:
    return SHARED


SCENARIOS = _shared_dir() / "conformance" / "spicedb" / "schemadsl" / "importer-test"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir()) if SCENARIOS.is_dir() else []

needs_scenarios = pytest.mark.skipif(
    not SCENARIOS.is_dir(),
    reason=f"SpiceDB importer scenarios not found at {SCENARIOS} (set ZANZI_SHARED_DIR)",
)

# What each failing scenario must raise and say.
FAILURES: dict[str, tuple[type[ZanziError], str]] = {
    "conflicting-definitions": (
        SchemaValidationError, "found name reused between multiple definitions and/or caveats: bar"),
    "escape-attempt": (SchemaSyntaxError, "import path `../user.zed` must stay within its folder"),
    "missing-import": (SchemaSyntaxError, "failed to read import `doesnotexist.zed`"),
}  # fmt: skip


def _compile_root(folder: Path) -> object:
    root = folder / "root.zed"
    return compile_schema(root.read_text(), source="root.zed", import_resolver=file_import_resolver(folder))


@needs_scenarios
def test_there_are_twelve_scenarios() -> None:
    assert len(NAMES) == 12
    assert {n for n in NAMES if not (SCENARIOS / n / "expected.zed").exists()} == set(FAILURES)


@needs_scenarios
@pytest.mark.parametrize("name", [n for n in NAMES if n not in FAILURES])
def test_scenario_compiles_to_its_expected_schema(name: str) -> None:
    folder = SCENARIOS / name
    expected = compile_schema((folder / "expected.zed").read_text(), source="expected.zed")
    got = _compile_root(folder)
    assert got == expected
    assert list(got.definitions) == list(expected.definitions)  # imports take the import's place


@needs_scenarios
@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failing_scenario_fails_clearly(name: str) -> None:
    kind, message = FAILURES[name]
    with pytest.raises(kind) as raised:
        _compile_root(SCENARIOS / name)
    assert message in raised.value.message
    assert raised.value.line >= 1 and raised.value.column >= 1


@needs_scenarios
def test_positions_name_the_file_they_come_from() -> None:
    schema = _compile_root(SCENARIOS / "nested-local-with-hop")
    assert schema.definitions["user"].position.source == "transitive/user/user.zed"
    assert schema.definitions["resource"].position.source == "root.zed"


@needs_scenarios
def test_the_conflict_is_reported_in_the_second_file() -> None:
    with pytest.raises(SchemaValidationError) as raised:
        _compile_root(SCENARIOS / "conflicting-definitions")
    assert raised.value.source == "right.zed"
    assert (raised.value.line, raised.value.column) == (1, 1)


def test_imports_resolve_relative_to_the_importing_file() -> None:
    files = {
        "a/b.zed": 'use import\nimport "c/d.zed"\ndefinition bee {\n relation dee: dee\n}',
        "a/c/d.zed": "definition dee {}",
    }
    schema = compile_schema(
        'use import\nimport "a/b.zed"\ndefinition root {\n relation bee: bee\n}',
        import_resolver=mapping_import_resolver(files),
    )
    assert list(schema.definitions) == ["dee", "bee", "root"]


def test_a_file_is_read_once_however_often_it_is_imported() -> None:
    reads: list[str] = []
    files = {
        "x.zed": 'use import\nimport "y.zed"\ndefinition xxx {}',
        "y.zed": 'use import\nimport "x.zed"\ndefinition yyy {}',
    }

    def resolver(path: str) -> str:
        reads.append(path)
        return files[path]

    schema = compile_schema(
        'use import\nimport "x.zed"\nimport "y.zed"\nimport "./x.zed"', import_resolver=resolver
    )
    assert sorted(reads) == ["x.zed", "y.zed"]
    assert list(schema.definitions) == ["yyy", "xxx"]


def test_use_flags_belong_to_the_file_that_declares_them() -> None:
    files = {"u.zed": "use expiration\ndefinition user {\n relation rel: user with expiration\n}"}
    schema = compile_schema(
        'use import\nimport "u.zed"\ndefinition doc {}', import_resolver=mapping_import_resolver(files)
    )
    assert schema.uses == frozenset({"expiration"})  # import/partial are compile-time only
    assert schema.definitions["user"].relations["rel"].allowed[0].expiration


def test_import_without_a_resolver_is_an_error() -> None:
    with pytest.raises(SchemaSyntaxError, match="no import resolver"):
        compile_schema('use import\nimport "x.zed"')


def test_import_needs_use_import() -> None:
    with pytest.raises(SchemaSyntaxError, match="Unexpected token at root level: TokenTypeIdentifier"):
        compile_schema('import "x.zed"', import_resolver=mapping_import_resolver({}))


def test_syntax_errors_in_imported_files_name_that_file() -> None:
    files = {"bad.zed": "definition oops {\n relation rel user\n}"}
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema('use import\nimport "bad.zed"', import_resolver=mapping_import_resolver(files))
    assert raised.value.source == "bad.zed"
    assert (raised.value.line, raised.value.column) == (2, 15)
    assert "Expected one of: [TokenTypeColon], found: TokenTypeIdentifier" in raised.value.message


@pytest.mark.parametrize("path", ["../x.zed", "a/../../x.zed", "/etc/passwd"])
def test_paths_that_leave_the_folder_are_refused(path: str) -> None:
    with pytest.raises(SchemaSyntaxError, match="must stay within its folder"):
        compile_schema(f'use import\nimport "{path}"', import_resolver=mapping_import_resolver({}))


def test_file_resolver_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.zed").write_text("definition secret {}")
    (root / "link.zed").symlink_to(tmp_path / "secret.zed")
    (root / "ok.zed").write_text("definition fine {}")
    resolve = file_import_resolver(root)
    assert resolve("ok.zed") == "definition fine {}"
    for bad in ("../secret.zed", "link.zed", str(tmp_path / "secret.zed")):
        with pytest.raises(ValueError):
            resolve(bad)
    with pytest.raises(FileNotFoundError):
        resolve("missing.zed")
    with pytest.raises(SchemaSyntaxError, match="leads outside the schema root"):
        compile_schema('use import\nimport "link.zed"', import_resolver=resolve)
