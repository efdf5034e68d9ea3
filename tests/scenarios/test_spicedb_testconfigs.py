"""SpiceDB's consistency-suite scenarios (shared/conformance/spicedb/testconfigs), over every
store backend: every assertion and expected relation through the validation runner, then
LookupResources / LookupSubjects against Check over all pairs, as SpiceDB's suite does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.consistency import assert_lookups_agree, universe_from
from support.spicedb_peer import SHARED
from zanzi.api.service import Service
from zanzi.api.validation import load_validation_file, run_validation

TESTCONFIGS = SHARED / "conformance" / "spicedb" / "testconfigs"
ALL_FILES = sorted(TESTCONFIGS.glob("*.yaml")) if TESTCONFIGS.exists() else []
_CAVEAT_RE = re.compile(r"^\s*caveat\s|\bwith\s+(?!expiration\b)[a-z]", re.MULTILINE)


def uses_caveats(path: Path) -> bool:
    vf = load_validation_file(path)
    return bool(vf.schema and _CAVEAT_RE.search(vf.schema))


CAVEAT_FILES = [p for p in ALL_FILES if uses_caveats(p)]


def backends(tmp_path: Path) -> dict[str, str]:
    return {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'scenario.db'}"}


@pytest.fixture(params=["memory", "sqlite"])
def datastore_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backends(tmp_path)[request.param]


def test_shared_data_is_present() -> None:
    assert TESTCONFIGS.exists(), f"missing SpiceDB conformance data at {TESTCONFIGS}"
    assert len(ALL_FILES) == 73
    assert len(CAVEAT_FILES) >= 19


@pytest.mark.parametrize("serving_index", [True, False], ids=["index", "store"])
@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_scenario_passes(path: Path, datastore_url: str, serving_index: bool) -> None:
    """Through the serving index and straight from the store: both must pass every scenario."""
    report = run_validation(
        load_validation_file(path),
        datastore=lambda: Service.open(datastore_url, serving_index=serving_index),
    )
    failures = [f"{o.location(path)}: {o.message}" for o in report.outcomes if not o.passed]
    assert not failures, "\n".join(failures)
    assert report.passed >= 1


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_scenario_lookups_agree_with_check(path: Path, datastore_url: str) -> None:
    vf = load_validation_file(path)
    assert vf.schema is not None and not vf.errors
    with Service.open(datastore_url) as service:
        service.write_schema(vf.schema)
        rels = [r for r, _ in vf.relationships]
        if rels:
            service.write_relationships(rels)
        extra = [a.relationship.subject for a in vf.assertions]
        compared = assert_lookups_agree(service, universe_from(service, rels, extra))
    assert compared > 0 or not rels


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_every_scenario_through_the_validate_command(backend: str, tmp_path: Path) -> None:
    """The issue's own words: every scenario file through `zanzi validate`, on each backend."""
    from click.testing import CliRunner

    from zanzi.cli.main import cli

    result = CliRunner().invoke(
        cli, ["validate", "--datastore", backends(tmp_path)[backend], *map(str, ALL_FILES)]
    )
    assert result.exit_code == 0, result.output[-3000:]
    totals = re.fullmatch(r"(\d+) passed, (\d+) failed", result.output.strip().splitlines()[-1])
    assert totals is not None, result.output[-3000:]
    assert int(totals[2]) == 0 and int(totals[1]) >= len(ALL_FILES) == 73
