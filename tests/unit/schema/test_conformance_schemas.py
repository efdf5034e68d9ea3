"""Every schema in SpiceDB's consistency suite, validation-file test data and zed's validate tests
compiles or fails exactly as SpiceDB does (and every compiled one survives a print/compile trip)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.paths import SHARED
from zanzi.errors import SchemaSyntaxError, SchemaValidationError
from zanzi.schema import compile_schema, file_import_resolver, ir, lint, print_schema


def _shared_dir() -> Path:
    return SHARED


SPICEDB = _shared_dir() / "conformance" / "spicedb"
pytestmark = pytest.mark.skipif(
    not SPICEDB.is_dir(), reason=f"SpiceDB conformance data not found at {SPICEDB} (set ZANZI_SHARED_DIR)"
)


def _files(folder: str, pattern: str) -> list[Path]:
    base = SPICEDB / folder
    return sorted(base.glob(pattern)) if base.is_dir() else []


def _schema_of(path: Path) -> tuple[str, Path] | None:
    """(schema text, file it came from) of a ``.zed`` file or a validation YAML file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".zed" or text.startswith("---"):
        doc = yaml.safe_load(text) or {}
        if "schema" in doc:
            return doc["schema"], path
        if "schemaFile" in doc:
            target = (path.parent / doc["schemaFile"]).resolve()
            return (target.read_text(encoding="utf-8"), target) if target.is_file() else None
        return None
    return text, path


def _compile(text: str, origin: Path) -> ir.Schema:
    return compile_schema(text, source=origin.name, import_resolver=file_import_resolver(origin.parent))


def _round_trip(schema: ir.Schema) -> None:
    printed = print_schema(schema)
    again = compile_schema(printed)
    assert again == schema
    assert print_schema(again) == printed


# -- consistency-suite configs: all compile ---------------------------------------------------

TESTCONFIGS = _files("testconfigs", "*.yaml*")


def test_all_testconfigs_are_found() -> None:
    assert len(TESTCONFIGS) == 74


@pytest.mark.parametrize("path", TESTCONFIGS, ids=lambda p: p.name)
def test_testconfig_schema_compiles_and_round_trips(path: Path) -> None:
    found = _schema_of(path)
    assert found is not None
    schema = _compile(*found)
    assert schema.definitions
    _round_trip(schema)


# -- pkg/validationfile test data ------------------------------------------------------------

VALIDATIONFILES = _files("validationfile-testdata", "*")
VALIDATIONFILE_FAILURES = {
    # `with some_caveat` but no such caveat
    "invalid_caveat.yaml": (
        SchemaValidationError,
        "could not lookup caveat `some_caveat` for relation `reader`",
    ),
    # `relation owner example/user` (no colon)
    "invalid_schemafile.zed": (
        SchemaSyntaxError,
        "Expected one of: [TokenTypeColon], found: TokenTypeIdentifier",
    ),
    "loader_using_invalid_schemafile.yaml": (SchemaSyntaxError, "Expected one of: [TokenTypeColon]"),
}


WITHOUT_SCHEMA = {
    "just_rels.yaml", "legacy.yaml", "loader_using_missing_schemafile.yaml",
    "loader_using_non-local_schemafile.yaml",
}  # fmt: skip


def test_validationfiles_without_a_schema_are_the_known_ones() -> None:
    assert {p.name for p in VALIDATIONFILES if _schema_of(p) is None} == WITHOUT_SCHEMA


@pytest.mark.parametrize(
    "path", [p for p in VALIDATIONFILES if p.name not in WITHOUT_SCHEMA], ids=lambda p: p.name
)
def test_validationfile_schema(path: Path) -> None:
    found = _schema_of(path)
    assert found is not None
    if path.name in VALIDATIONFILE_FAILURES:
        kind, message = VALIDATIONFILE_FAILURES[path.name]
        with pytest.raises(kind) as raised:
            _compile(*found)
        assert message in raised.value.message
    else:
        _round_trip(_compile(*found))


# -- zed validate tests ------------------------------------------------------------------------

ZED = SPICEDB / "zed-validate-test"
# Entry points of zed's validate tests (validate_test.go) and what SpiceDB makes of their schema.
ZED_OK = [
    "standard-validation.yaml", "external-schema.yaml", "external-schema.zed", "schema-only.zed",
    "composable-schema-root.zed", "external-and-composable.yaml", "failed-assertions.yaml",
    "failed-expected-relations.yaml", "schema-with-warnings.zed", "warnings-point-at-right-line.yaml",
    "warnings-point-at-right-line.zed", "schema-relation-named-schema.zed", "yaml-with-zed-extension.zed",
    "assertion-error-before-schema.yaml", "relationship-error-before-schema.yaml",
    "relationship-error-before-schema-multi.yaml", "sibling-folders/tests/validation.yaml",
    "upwards-walk/validation.yaml",
]  # fmt: skip
ZED_FAIL = {
    "invalid-schema.zed": (SchemaSyntaxError, "Unexpected token at root level: TokenTypeIdentifier"),
    "missing-relation.zed": (
        SchemaValidationError, "relation/permission `write` not found under definition `test`"),
    "missing-relation.yaml": (SchemaValidationError, "relation/permission `write` not found"),
    "schema-error-after-assertions.yaml": (SchemaValidationError, "`nonexistent` not found"),
    "schema-error-after-relationships.yaml": (SchemaValidationError, "`nonexistent` not found"),
    "composable-schema-imports-file-with-error.zed": (SchemaValidationError, "`unknownrel` not found"),
    "composable-schema-with-import-error-root.zed": (SchemaValidationError, "`unknownrel` not found"),
    "external-composable-with-error.yaml": (SchemaValidationError, "`unknownrel` not found"),
    "nested-composable-schema.zed": (SchemaSyntaxError, "failed to read import `doesnotexist.zed`"),
    "nonexistant-import.zed": (SchemaSyntaxError, "failed to read import `doesnotexist.zed`"),
    "upwards-walk-schema-with-nonexistant-import/validation.yaml": (
        SchemaSyntaxError, "failed to read import `doesnotexist.zed`"),
    # zed only *warns* about `permission view = view` (permission-references-itself), but SpiceDB's
    # WriteSchema rejects it (a cycle of aliases) and so do we.
    "warnings.zed": (SchemaValidationError, "permission `view` under definition `test` references itself"),
    "composable-schema-warning-root.zed": (
        SchemaValidationError, "permission `edit` under definition `resource`"),
}  # fmt: skip


@pytest.mark.parametrize("name", ZED_OK)
def test_zed_schema_that_validates(name: str) -> None:
    found = _schema_of(ZED / name)
    assert found is not None
    _round_trip(_compile(*found))


@pytest.mark.parametrize("name", sorted(ZED_FAIL))
def test_zed_schema_that_fails(name: str) -> None:
    kind, message = ZED_FAIL[name]
    found = _schema_of(ZED / name)
    assert found is not None
    with pytest.raises(kind) as raised:
        _compile(*found)
    assert message in raised.value.message
    assert raised.value.line >= 1


def test_every_zed_entry_point_is_classified() -> None:
    entry_points = {
        str(p.relative_to(ZED))
        for p in [*ZED.glob("*.zed"), *ZED.glob("*.yaml"), *ZED.glob("*/*.yaml"), *ZED.glob("*/*/*.yaml")]
    }
    # Files only ever imported by others, the licence, and the file without any schema.
    helpers = {
        "LICENSE.zed", "composable-schema-user.zed", "composable-schema-imported-with-error.zed",
        "composable-schema-with-import-error-imported.zed", "missing-schema.yaml",
    }  # fmt: skip
    assert entry_points - helpers == set(ZED_OK) | set(ZED_FAIL)


def test_zed_warnings_match_spicedbs_lints() -> None:
    found = _schema_of(ZED / "schema-with-warnings.zed")
    assert found is not None
    warnings = lint(_compile(*found))
    assert [(w.name, w.relation) for w in warnings] == [("relation-name-references-parent", "view_resource")]
    assert 'Permission "view_resource" references parent type "resource" in its name' in str(warnings[0])
    found = _schema_of(ZED / "warnings-point-at-right-line.zed")
    assert found is not None
    (warning,) = lint(_compile(*found))
    assert warning.relation == "delete_resource"
    assert warning.position is not None and (warning.position.line, warning.position.column) == (26, 2)
