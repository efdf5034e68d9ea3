"""Conformance tests: snapshots, schema history, expiration, query filters and pagination."""

from __future__ import annotations

from datetime import timedelta

import pytest

from zanzi.errors import RelationshipExists
from zanzi.model import ELLIPSIS, RelationshipFilter, SubjectFilter, Update
from zanzi.store.base import Datastore, RelationshipQuery, sort_key
from zanzi.store.conformance._base import (
    DATASET,
    HOUR,
    ConformanceBase,
    FakeClock,
    Q,
    read,
    rel,
    strings,
    write,
)


class ReadTests(ConformanceBase):
    """Snapshots, schema history, expiration, query filters and pagination."""

    # -- snapshots --------------------------------------------------------------------------

    def test_snapshot_isolation(self, ds: Datastore) -> None:
        r1 = write(ds, "doc:one#viewer@user:alice", schema="v1")
        old = ds.snapshot(r1)
        r2 = write(ds, Update.delete("doc:one#viewer@user:alice"), Update.create("doc:two#viewer@user:bob"))
        r3 = write(ds, "doc:two#viewer@user:bob[cav]", schema="v3")
        assert strings(old.query(Q())) == {"doc:one#viewer@user:alice"}
        assert read(ds, at=r1) == {"doc:one#viewer@user:alice"}
        assert read(ds, at=r2) == {"doc:two#viewer@user:bob"}
        assert read(ds, at=r3) == {"doc:two#viewer@user:bob[cav]"}
        assert ds.snapshot(r2).read_schema() == "v1"
        assert ds.snapshot(r3).read_schema() == "v3"
        assert old.read_schema() == "v1"
        assert not old.exists(Q(resource_type="doc", resource_ids=("two",)))

    def test_schema_history(self, ds: Datastore) -> None:
        genesis = ds.head_revision()
        r1 = write(ds, schema="definition user {}")
        r2 = write(ds, "doc:one#viewer@user:alice")
        r3 = write(ds, schema="definition user {}\ndefinition doc {}")
        assert ds.snapshot(genesis).read_schema() is None
        assert ds.snapshot(r1).read_schema() == "definition user {}"
        assert ds.snapshot(r2).read_schema() == "definition user {}"
        assert ds.snapshot(r3).read_schema() == "definition user {}\ndefinition doc {}"

    # -- expiration -------------------------------------------------------------------------

    def test_expired_relationships_are_not_read(self, ds: Datastore, clock: FakeClock) -> None:
        self.require(ds, "expiration")
        expiry = clock() + HOUR
        stamp = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        write(ds, f"doc:one#viewer@user:alice[expiration:{stamp}]", "doc:one#viewer@user:bob")
        both = {f"doc:one#viewer@user:alice[expiration:{stamp}]", "doc:one#viewer@user:bob"}
        assert read(ds) == both
        assert read(ds, now=expiry - timedelta(microseconds=1)) == both
        assert read(ds, now=expiry) == {"doc:one#viewer@user:bob"}
        assert read(ds, now=expiry + HOUR) == {"doc:one#viewer@user:bob"}
        snapshot = ds.snapshot(ds.head_revision(), now=expiry)
        assert not snapshot.exists(Q(subject_type="user", subject_ids=("alice",)))
        clock.advance(2 * HOUR)
        assert read(ds) == {"doc:one#viewer@user:bob"}  # default now is the store's clock

    def test_expired_relationship_can_be_created_again(self, ds: Datastore, clock: FakeClock) -> None:
        self.require(ds, "expiration")
        stamp = (clock() + HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        write(ds, Update.create(f"doc:one#viewer@user:alice[expiration:{stamp}]"))
        with pytest.raises(RelationshipExists):
            write(ds, Update.create("doc:one#viewer@user:alice"))
        clock.advance(2 * HOUR)
        with ds.transaction() as tx:
            assert list(tx.query(Q(resource_type="doc"))) == []
            assert tx.delete(Q(resource_type="doc")) == []
            tx.write([Update.create("doc:one#viewer@user:alice")])
        assert read(ds) == {"doc:one#viewer@user:alice"}

    # -- queries ----------------------------------------------------------------------------

    def test_query_filters(self, ds: Datastore) -> None:
        write(ds, *DATASET)
        cases: list[tuple[RelationshipQuery, set[str]]] = [
            (Q(), set(DATASET)),
            (Q(resource_type="folder"), {"folder:one#viewer@user:alice", "folder:root#parent@folder:one"}),
            (Q(resource_type="doc", resource_ids=("two",)), {"doc:two#viewer@user:*"}),
            (Q(resource_ids=("one",)), {t for t in DATASET if t.split("#")[0].endswith(":one")}),
            (
                Q(resource_type="doc", resource_id_prefix="tw"),
                {"doc:two#viewer@user:*", "doc:twenty#owner@user:carol"},
            ),
            (Q(resource_type="doc", resource_id_prefix="T"), {"doc:Two#viewer@user:dave"}),
            (Q(resource_id_prefix="twe"), {"doc:twenty#owner@user:carol"}),
            (Q(relation="viewer", resource_type="doc", resource_ids=("one",)), {t for t in DATASET[:2]}),
            (Q(relation="member"), {"group:eng#member@user:alice", "group:eng#member@group:ops#member"}),
            (
                Q(subject_type="group"),
                {"doc:one#viewer@group:eng#member", "group:eng#member@group:ops#member"},
            ),
            (
                Q(subject_type="user", subject_ids=("alice",)),
                {"doc:one#viewer@user:alice", "folder:one#viewer@user:alice", "group:eng#member@user:alice"},
            ),
            (Q(subject_type="user", subject_ids=("*",)), {"doc:two#viewer@user:*"}),
            (Q(subject_ids=("one",)), {"folder:root#parent@folder:one"}),
            (
                Q(resource_type="doc", subject_relation=ELLIPSIS),
                {t for t in DATASET if t.startswith("doc:")} - {DATASET[1]},
            ),
            (Q(resource_type="doc", subject_relation="member"), {"doc:one#viewer@group:eng#member"}),
            (
                Q(resource_type="doc", subject_relation=None, subject_type="group"),
                {"doc:one#viewer@group:eng#member"},
            ),
            (
                Q(
                    resource_type="group",
                    resource_ids=("eng",),
                    relation="member",
                    subject_type="group",
                    subject_ids=("ops",),
                    subject_relation="member",
                ),
                {"group:eng#member@group:ops#member"},
            ),
            (Q(resource_type="doc", resource_ids=()), set()),
            (Q(subject_type="user", subject_ids=()), set()),
            (Q(resource_type="nothing"), set()),
            (Q(resource_type="doc", relation="viewer", subject_type="user", subject_ids=("nobody",)), set()),
        ]
        snapshot = ds.snapshot(ds.head_revision())
        for q, expected in cases:
            assert strings(snapshot.query(q)) == expected, q
            assert snapshot.exists(q) == bool(expected), q

    def test_query_from_filter(self, ds: Datastore) -> None:
        write(ds, *DATASET)
        for text, expected in [
            ("doc:one#viewer", {"doc:one#viewer@user:alice", "doc:one#viewer@group:eng#member"}),
            ("doc:one#viewer@user", {"doc:one#viewer@user:alice"}),
            ("doc:one#viewer@group:eng#member", {"doc:one#viewer@group:eng#member"}),
            ("doc@user:alice#...", {"doc:one#viewer@user:alice"}),
        ]:
            q = Q.from_filter(RelationshipFilter.parse(text))
            assert read(ds, q) == expected, text
        f = RelationshipFilter(resource_type="doc", subject=SubjectFilter("user", None, ELLIPSIS))
        assert read(ds, Q.from_filter(f)) == {
            "doc:one#viewer@user:alice", "doc:one#editor@user:bob", "doc:two#viewer@user:*",
            "doc:twenty#owner@user:carol", "doc:Two#viewer@user:dave",
        }  # fmt: skip

    def test_batched_ids(self, ds: Datastore) -> None:
        count = 1300
        write(ds, *(f"doc:d{i}#viewer@user:u{i}" for i in range(count)), "doc:d0#editor@user:u0")
        wanted = tuple(f"d{i}" for i in range(0, count, 1)) + ("missing", "d5")  # a repeat
        got = read(ds, Q(resource_type="doc", relation="viewer", resource_ids=wanted))
        assert got == {f"doc:d{i}#viewer@user:u{i}" for i in range(count)}
        subjects = tuple(f"u{i}" for i in range(0, count, 2))
        got = read(ds, Q(subject_type="user", subject_ids=subjects, resource_type="doc", relation="viewer"))
        assert got == {f"doc:d{i}#viewer@user:u{i}" for i in range(0, count, 2)}
        both = read(
            ds,
            Q(
                resource_type="doc",
                resource_ids=tuple(f"d{i}" for i in range(0, count, 3)),
                subject_ids=subjects,
            ),
        )
        assert both == {f"doc:d{i}#viewer@user:u{i}" for i in range(0, count, 6)} | {"doc:d0#editor@user:u0"}
        snapshot = ds.snapshot(ds.head_revision())
        page = list(snapshot.query(Q(resource_type="doc", resource_ids=wanted), limit=10))
        assert [sort_key(r) for r in page] == sorted(sort_key(r) for r in page)
        assert len(page) == 10

    def test_ordered_pagination(self, ds: Datastore) -> None:
        texts = [
            f"doc:d{i % 7}#{rel}@user:u{i}"
            for i, rel in zip(range(40), ["viewer", "editor"] * 20, strict=True)
        ]
        texts += [
            "doc:d1#viewer@group:g1#member",
            "doc:d1#viewer@group:g1",
            "doc:d1#viewer@user:*",
            "folder:f#viewer@user:u1",
        ]
        write(ds, *texts)
        snapshot = ds.snapshot(ds.head_revision())
        everything = sorted((rel(t) for t in texts), key=sort_key)
        assert [str(r) for r in snapshot.query(Q(), ordered=True)] == [str(r) for r in everything]
        for q in (
            Q(),
            Q(resource_type="doc"),
            Q(resource_type="doc", resource_ids=("d1",)),
            Q(resource_type="doc", resource_ids=("d1",), relation="viewer"),
            Q(resource_type="doc", resource_ids=("d1", "d2", "d3")),
            Q(resource_type="doc", relation="viewer"),
            Q(subject_type="user"),
            Q(resource_type="doc", resource_ids=("d1",), relation="viewer", subject_type="group",
              subject_ids=("g1",)),
        ):  # fmt: skip
            expected = [str(r) for r in everything if q.matches(r)]
            for size in (1, 3, 7, 100):
                pages: list[str] = []
                cursor = None
                while True:
                    page = list(snapshot.query(q, limit=size, after=cursor))
                    pages.extend(str(r) for r in page)
                    if len(page) < size:
                        break
                    cursor = sort_key(page[-1])
                assert pages == expected, (q, size)
            assert [str(r) for r in snapshot.query(q, limit=5)] == expected[:5]
            assert list(snapshot.query(q, limit=0)) == []
        last = sort_key(everything[-1])
        assert list(snapshot.query(Q(), after=last)) == []
        assert list(snapshot.query(Q(resource_type="doc"), after=("zzz", "", "", "", "", ""))) == []
        assert len(list(snapshot.query(Q(resource_type="folder"), after=("doc", "", "", "", "", "")))) == 1
