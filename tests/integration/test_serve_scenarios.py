"""Every SpiceDB conformance scenario (tests/data/shared/conformance/spicedb/testconfigs) through
a real server, once with the official gRPC client and once with plain HTTP/JSON requests:

- the schema is written with WriteSchema and the relationships with WriteRelationships;
- every assertion is checked with CheckPermission (caveat context from the assertion) and, all
  together, with CheckBulkPermissions;
- every expected relation (``validation:``) is a subject that CheckPermission grants (or grants
  conditionally, for ``[...]``), and LookupSubjects finds exactly the expected subjects;
- LookupResources and LookupSubjects agree with CheckPermission for every (resource, subject)
  pair of the scenario, as SpiceDB's consistency suite requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.paths import SHARED
from support.scenario_wire import WANT, expected_relations, lookups_agree, run_scenario
from support.wire import GrpcWire, HttpWire, reset
from zanzi.api.validation.expected import parse_expected

TESTCONFIGS = SHARED / "conformance" / "spicedb" / "testconfigs"
FILES = sorted(TESTCONFIGS.glob("*.yaml"))


def test_every_scenario_file_is_here() -> None:
    assert len(FILES) == 73


@pytest.fixture(params=["grpc", "http"])
def wire(request: pytest.FixtureRequest, grpc_wire: GrpcWire, http_wire: HttpWire) -> Any:
    return grpc_wire if request.param == "grpc" else http_wire


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_through_the_wire(path: Path, wire: GrpcWire | HttpWire) -> None:
    run_scenario(path, wire)


EXPECTED_SCENARIO = """\
schema: |-
  definition user {}

  caveat on_weekday(day string) {
    day != "saturday" && day != "sunday"
  }

  definition group {
    relation member: user | group#member
  }

  definition document {
    relation viewer: user | user:* | group#member | user with on_weekday
    relation banned: user
    permission view = viewer - banned
  }
relationships: |-
  group:eng#member@user:alice
  group:eng#member@group:ops#member
  group:ops#member@user:bob
  document:plan#viewer@group:eng#member
  document:plan#viewer@user:carol[on_weekday]
  document:public#viewer@user:*
  document:public#banned@user:mallory
assertions:
  assertTrue:
    - document:plan#view@user:bob
    - 'document:plan#view@user:carol with {"day": "monday"}'
  assertCaveated:
    - document:plan#view@user:carol
  assertFalse:
    - document:public#view@user:mallory
validation:
  document:plan#view:
    - "[group:eng#member] is <document:plan#viewer>"
    - "[group:ops#member] is <group:eng#member>"
    - "[user:alice] is <group:eng#member>"
    - "[user:bob] is <group:ops#member>"
    - "[user:carol[...]] is <document:plan#viewer>"
  document:public#view:
    - "[user:* - {user:mallory}] is <document:public#viewer>"
"""


def test_expected_relations_through_the_wire(wire: GrpcWire | HttpWire) -> None:
    from zanzi.api.validation import run_validation
    from zanzi.api.validation.loader import parse_text

    vf = parse_text(EXPECTED_SCENARIO)
    assert not vf.errors and len(vf.expected) == 2
    assert run_validation(vf).ok  # the scenario itself is right (embedded run)
    assert vf.schema is not None
    reset(wire, vf.schema)
    wire.write([r for r, _ in vf.relationships])
    for a in vf.assertions:
        item = (str(a.relationship.resource), a.relationship.relation, str(a.relationship.subject), a.context)
        assert wire.check(item) == WANT[a.kind], a.text
    for key, (_, entries) in vf.expected.items():
        expected_relations(wire, key, [parse_expected(e.text) for e in entries])
    lookups_agree(wire, [r for r, _ in vf.relationships], vf)
