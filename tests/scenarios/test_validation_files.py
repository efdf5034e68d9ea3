"""zed's validate-test files and SpiceDB's validation-file loader data, through the runner and the
``zanzi validate`` command: each passes or fails as zed / SpiceDB's loader test says, and a
failure names what went wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from support.spicedb_peer import SHARED
from zanzi.api.validation import run_file
from zanzi.cli.main import cli

SPICEDB = SHARED / "conformance" / "spicedb"
ZED = SPICEDB / "zed-validate-test"
LOADER = SPICEDB / "validationfile-testdata"

# file -> None (passes) or (line, fragment of the failure message). Outcomes follow zed's
# validate_test.go and SpiceDB's pkg/validationfile/loader_test.go.
EXPECTED: dict[str, tuple[int | None, str] | None] = {
    # zed validate-test
    "zed-validate-test/standard-validation.yaml": None,
    "zed-validate-test/external-schema.yaml": None,
    "zed-validate-test/external-schema.zed": None,
    "zed-validate-test/schema-only.zed": None,
    "zed-validate-test/composable-schema-root.zed": None,
    "zed-validate-test/composable-schema-user.zed": None,
    "zed-validate-test/external-and-composable.yaml": None,
    "zed-validate-test/schema-with-warnings.zed": None,
    "zed-validate-test/warnings-point-at-right-line.yaml": None,
    "zed-validate-test/warnings-point-at-right-line.zed": None,
    "zed-validate-test/schema-relation-named-schema.zed": None,
    "zed-validate-test/yaml-with-zed-extension.zed": None,
    "zed-validate-test/sibling-folders/schema/root.zed": None,
    "zed-validate-test/sibling-folders/tests/validation.yaml": None,
    "zed-validate-test/upwards-walk/validation.yaml": None,
    "zed-validate-test/failed-assertions.yaml": (
        11,
        "Expected relation or permission document:1#viewer@user:maria to exist",
    ),
    "zed-validate-test/failed-expected-relations.yaml": (
        11,
        "For object and permission/relation `document:1#viewer`, missing expected subject `user:maria`",
    ),
    "zed-validate-test/assertion-error-before-schema.yaml": (6, "document:1#viewer@user:maria to exist"),
    "zed-validate-test/invalid-schema.zed": (1, "Unexpected token at root level"),
    "zed-validate-test/missing-relation.zed": (2, "`write` not found under definition `test`"),
    "zed-validate-test/missing-relation.yaml": (9, "`write` not found under definition `test`"),
    "zed-validate-test/missing-schema.yaml": (None, "either schema or schemaFile must be present"),
    "zed-validate-test/relationship-error-before-schema.yaml": (3, "relation `idontexisttt` not found"),
    "zed-validate-test/relationship-error-before-schema-multi.yaml": (5, "relation `idontexisttt` not found"),
    "zed-validate-test/schema-error-after-assertions.yaml": (11, "`nonexistent` not found"),
    "zed-validate-test/schema-error-after-relationships.yaml": (8, "`nonexistent` not found"),
    "zed-validate-test/composable-schema-imported-with-error.zed": (5, "`unknownrel` not found"),
    "zed-validate-test/composable-schema-imports-file-with-error.zed": (5, "`unknownrel` not found"),
    "zed-validate-test/composable-schema-with-import-error-imported.zed": (5, "`unknownrel` not found"),
    "zed-validate-test/composable-schema-with-import-error-root.zed": (5, "`unknownrel` not found"),
    "zed-validate-test/external-composable-with-error.yaml": (5, "`unknownrel` not found"),
    "zed-validate-test/nested-composable-schema.zed": (7, "failed to read import `doesnotexist.zed`"),
    "zed-validate-test/nonexistant-import.zed": (7, "failed to read import `doesnotexist.zed`"),
    "zed-validate-test/upwards-walk-schema-with-nonexistant-import/validation.yaml": (
        7,
        "failed to read import `doesnotexist.zed`",
    ),
    "zed-validate-test/sibling-folders/schema/domain.zed": (2, "object definition `user` not found"),
    # zed only warns about `permission view = view`; SpiceDB's WriteSchema rejects it, as we do.
    "zed-validate-test/warnings.zed": (2, "permission `view` under definition `test` references"),
    "zed-validate-test/composable-schema-warning-root.zed": (4, "permission `edit` under definition"),
    # SpiceDB validation-file loader data
    "validationfile-testdata/initial_schema_and_rels.yaml": None,
    "validationfile-testdata/loader_no_comment.yaml": None,
    "validationfile-testdata/loader_with_comment.yaml": None,
    "validationfile-testdata/loader_using_schemafile.yaml": None,
    "validationfile-testdata/requires_chunking.yaml": None,
    "validationfile-testdata/separate_schemafile.zed": None,
    "validationfile-testdata/basic_caveats.yaml": None,
    "validationfile-testdata/caveat_order.yaml": None,
    "validationfile-testdata/invalid_caveat.yaml": (5, "caveat with name `some_caveat` not found"),
    "validationfile-testdata/invalid_caveated_rel.yaml": (
        13,
        "subjects of type `user with some_caveat` are not allowed on relation `resource#reader`",
    ),
    "validationfile-testdata/invalid_caveated_rel_syntax.yaml": (15, "error parsing relationship"),
    "validationfile-testdata/invalid_schemafile.zed": (6, "parse error"),
    "validationfile-testdata/just_rels.yaml": (None, "either schema or schemaFile must be present"),
    "validationfile-testdata/legacy.yaml": (2, "relationships must be specified in `relationships`"),
    "validationfile-testdata/loader_using_invalid_schemafile.yaml": (6, "parse error"),
    "validationfile-testdata/loader_using_missing_schemafile.yaml": (2, "cannot read schemaFile"),
    "validationfile-testdata/loader_using_non-local_schemafile.yaml": (2, "cannot read schemaFile"),
    "validationfile-testdata/repeated_relationship.yaml": (
        15,
        "found repeated relationship `resource:first#reader@user:tom`",
    ),
    "validationfile-testdata/schema_and_schemafile.yaml": (2, "only one of schema or schemaFile"),
}

CAVEAT_FILES = {
    "validationfile-testdata/basic_caveats.yaml",
    "validationfile-testdata/caveat_order.yaml",
    "validationfile-testdata/invalid_caveated_rel.yaml",
}


def _params() -> list[object]:
    out: list[object] = []
    for name in sorted(EXPECTED):
        marks = []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def test_every_data_file_is_classified() -> None:
    files = {
        str(p.relative_to(SPICEDB))
        for base in (ZED, LOADER)
        for p in base.rglob("*")
        if p.is_file() and not p.name.startswith("LICENSE")
    }
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", _params())
def test_file_passes_or_fails_as_expected(name: str) -> None:
    report = run_file(SPICEDB / name)
    expected = EXPECTED[name]
    failures = [o for o in report.outcomes if not o.passed]
    if expected is None:
        assert not failures, [o.message for o in failures]
        assert report.passed >= 1
        return
    line, fragment = expected
    assert failures, f"{name} should fail"
    first = failures[0]
    assert fragment in first.message
    assert first.line == line


def test_cli_validate_reports_each_failure_and_the_totals(tmp_path: Path) -> None:
    files = [
        str(ZED / "standard-validation.yaml"),
        str(ZED / "failed-assertions.yaml"),
        str(ZED / "failed-expected-relations.yaml"),
    ]
    result = CliRunner().invoke(cli, ["validate", *files])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "5 passed, 2 failed"  # per file: its load, then each item
    assert any("failed-assertions.yaml:11:" in line and "user:maria" in line for line in lines)
    assert any("failed-expected-relations.yaml:11:" in line for line in lines)


def test_cli_validate_passes_on_passing_files() -> None:
    files = [str(ZED / "standard-validation.yaml"), str(ZED / "external-schema.yaml")]
    result = CliRunner().invoke(cli, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "6 passed, 0 failed"
