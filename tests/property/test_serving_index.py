"""The serving index must answer exactly as the store does: at the newest revision, at older
snapshots it still holds, after writes and deletes from this service and from another one on
the same datastore, with caveats and expiring relationships."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.randomschema import USER_IDS, generate
from zanzi import errors
from zanzi.api.service import Service
from zanzi.model import Consistency, Operation, Relationship, Update
from zanzi.store.registry import open_datastore

FULL = Consistency.fully_consistent()


def answers(service: Service, case: object, consistency: Consistency) -> dict[str, object]:
    c = case
    out: dict[str, object] = {}
    subjects = [f"user:{u}" for u in USER_IDS] + ["group:g1#member"]
    for t, ids in c.resources.items():  # type: ignore[attr-defined]
        for i in ids:
            for name in c.names[t]:  # type: ignore[attr-defined]
                for s in subjects:
                    try:
                        out[f"check {t}:{i}#{name}@{s}"] = service.check(
                            f"{t}:{i}", name, s, consistency=consistency
                        ).permissionship
                    except errors.MaxDepthExceeded:
                        out[f"check {t}:{i}#{name}@{s}"] = "cycle"
                out[f"ls {t}:{i}#{name}"] = sorted(
                    (str(r.subject), r.permissionship.name, tuple(str(e.subject) for e in r.excluded))
                    for r in service.lookup_subjects(f"{t}:{i}", name, "user", consistency=consistency)
                )
        for name in c.names[t]:  # type: ignore[attr-defined]
            for s in subjects[:3]:
                out[f"lr {t}#{name}@{s}"] = sorted(
                    (r.resource_id, r.permissionship.name)
                    for r in service.lookup_resources(t, name, s, consistency=consistency)
                )
    return out


def mutate(rnd: random.Random, case: object) -> list[Update]:
    rels = [Relationship.parse(r) for r in case.relationships]  # type: ignore[attr-defined]
    updates = []
    for rel in rnd.sample(rels, k=min(5, len(rels))):
        updates.append(Update(Operation.DELETE, rel))
    return updates


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=1_000_000), st.booleans())
def test_index_answers_equal_store_answers(seed: int, caveats: bool) -> None:
    case = generate(seed, cycles=seed % 2 == 0, caveats=caveats)
    store = open_datastore("memory://")
    indexed = Service(store, serving_index=True)
    direct = Service(store, serving_index=False)
    indexed.write_schema(case.schema)
    half = len(case.relationships) // 2
    first = indexed.write_relationships(case.relationships[:half])
    # the index is built now, then written to from both services
    assert answers(indexed, case, FULL) == answers(direct, case, FULL)
    direct.write_relationships(case.relationships[half:])  # another writer: index must catch up
    assert answers(indexed, case, FULL) == answers(direct, case, FULL)
    rnd = random.Random(seed)
    second = indexed.write(mutate(rnd, case)).token
    assert answers(indexed, case, FULL) == answers(direct, case, FULL)
    for token in (first, second):
        exact = Consistency.at_exact_snapshot(token)
        assert answers(indexed, case, exact) == answers(direct, case, exact)


def test_expiring_relationships_in_the_index_follow_the_clock(tmp_path: Path) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    service = Service.open(f"sqlite:///{tmp_path / 'exp.db'}", clock=lambda: now[0])
    with service:
        service.write_schema(
            "use expiration\ndefinition user {}\ndefinition doc {\n"
            "  relation viewer: user with expiration\n  permission view = viewer\n}"
        )
        service.write_relationships(["doc:a#viewer@user:x[expiration:2030-01-01T00:00:05Z]"])
        assert service.check("doc:a", "view", "user:x").allowed
        assert service.check("doc:a", "view", "user:x").allowed  # shared sub-answers are off here
        now[0] += timedelta(seconds=5)
        assert not service.check("doc:a", "view", "user:x").allowed
        assert list(service.lookup_resources("doc", "view", "user:x")) == []


def test_schema_change_rebuilds_the_index() -> None:
    service = Service.open("memory://")
    with service:
        service.write_schema("definition user {}\ndefinition doc {\n  relation viewer: user\n}")
        service.write_relationships(["doc:a#viewer@user:x"])
        assert service.check("doc:a", "viewer", "user:x").allowed
        service.write_schema(
            "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = viewer\n}"
        )
        assert service.check("doc:a", "view", "user:x").allowed
        service.write_schema(
            "definition user {}\ndefinition team {\n  relation member: user\n}\n"
            "definition doc {\n  relation viewer: user | team#member\n  permission view = viewer\n}"
        )
        service.write_relationships(["team:t#member@user:y", "doc:a#viewer@team:t#member"])
        assert service.check("doc:a", "view", "user:y").allowed


@pytest.mark.parametrize("quantum", [0.0, 30.0])
def test_a_service_always_sees_its_own_writes(quantum: float) -> None:
    service = Service.open("memory://", quantum=quantum)
    with service:
        service.write_schema("definition user {}\ndefinition doc {\n  relation viewer: user\n}")
        service.write_relationships(["doc:a#viewer@user:x"])
        assert service.check("doc:a", "viewer", "user:x").allowed
        service.write(Update(Operation.DELETE, Relationship.parse("doc:a#viewer@user:x")))
        assert not service.check("doc:a", "viewer", "user:x").allowed


@pytest.mark.parametrize("seed", [3, 11, 42])
def test_an_index_built_in_small_pages_equals_the_store(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build reads each type in ordered pages; with pages of 3 every boundary case shows."""
    import zanzi.engine.index as index_module

    monkeypatch.setattr(index_module, "_BUILD_PAGE", 3)
    case = generate(seed, cycles=False, caveats=True)
    store = open_datastore(f"sqlite:///{tmp_path / 'pages.db'}")
    direct = Service(store, serving_index=False)
    direct.write_schema(case.schema)
    direct.write_relationships(case.relationships)  # all written before the index exists
    indexed = Service(store, serving_index=True)
    assert answers(indexed, case, FULL) == answers(direct, case, FULL)
    serving = indexed._serving
    assert serving is not None and serving.index.size == len(
        {str(r) for r in direct.export_relationships(FULL)}
    )
