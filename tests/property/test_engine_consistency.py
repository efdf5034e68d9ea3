"""Random schemas and data (unions, intersections, exclusions, arrows, .all(), wildcards, nested
and cyclic groups): LookupResources and LookupSubjects must agree with Check on every pair."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.consistency import assert_lookups_agree, universe_from
from support.randomschema import USER_IDS, generate
from zanzi.api.service import Service
from zanzi.model import Relationship, SubjectRef


def load(seed: int) -> tuple[Service, list[Relationship]]:
    case = generate(seed)
    service = Service.open("memory://")
    service.write_schema(case.schema)
    rels = [Relationship.parse(r) for r in case.relationships]
    service.write_relationships(rels)
    return service, rels


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10_000_000))
def test_lookups_agree_with_check_on_random_cases(seed: int) -> None:
    service, rels = load(seed)
    with service:
        extra = [SubjectRef("user", u) for u in USER_IDS] + [SubjectRef("group", "g1", "member")]
        assert assert_lookups_agree(service, universe_from(service, rels, extra)) > 0


@pytest.mark.parametrize("seed", range(5))
def test_random_schema_round_trips_through_the_service(seed: int) -> None:
    service, rels = load(seed)
    with service:
        stored = {str(r) for r in service.read_relationships("@user")} | {
            str(r) for r in service.read_relationships("@group")
        }
        assert {str(r) for r in rels if r.subject.type in ("user", "group")} == stored
