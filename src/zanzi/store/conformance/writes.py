"""Conformance tests: cREATE / TOUCH / DELETE semantics, delete by query, rollback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zanzi.errors import RelationshipExists
from zanzi.model import Caveat, Update
from zanzi.store.base import Datastore
from zanzi.store.conformance._base import DATASET, ConformanceBase, Q, read, rel, strings, write


class WriteTests(ConformanceBase):
    """CREATE / TOUCH / DELETE semantics, delete by query, rollback."""

    # -- create / touch / delete ------------------------------------------------------------

    def test_create_and_read_back_every_field(self, ds: Datastore) -> None:
        texts = {
            "doc:one#viewer@user:alice",
            "doc:one#viewer@group:eng#member",
            "doc:one#viewer@user:*",
            'doc:one#viewer@user:bob[only_on:{"days":["mon","tue"],"nested":{"n":1.5,"ok":true}}]',
            "doc:one#viewer@user:carol[expiration:2031-01-02T03:04:05.123456Z]",
            'doc:one#viewer@user:dave[cav_one:{"a":1}][expiration:2031-01-02T03:04:05Z]',
            "doc:one#viewer@user:erin[no_context]",
        }
        revision = write(ds, *(Update.create(t) for t in texts))
        assert read(ds) == texts
        assert read(ds, at=revision) == texts
        got = {str(r): r for r in ds.snapshot(revision).query(Q(resource_type="doc"))}
        bob = got['doc:one#viewer@user:bob[only_on:{"days":["mon","tue"],"nested":{"n":1.5,"ok":true}}]']
        assert bob.caveat == Caveat("only_on", {"days": ["mon", "tue"], "nested": {"n": 1.5, "ok": True}})
        carol = got["doc:one#viewer@user:carol[expiration:2031-01-02T03:04:05.123456Z]"]
        assert carol.expiration == datetime(2031, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        assert carol.subject.relation is None
        erin = got["doc:one#viewer@user:erin[no_context]"]
        assert erin.caveat is not None and dict(erin.caveat.context) == {}

    def test_create_existing_raises_and_names_it(self, ds: Datastore) -> None:
        before = write(ds, Update.create("doc:one#viewer@user:alice"))
        with pytest.raises(RelationshipExists) as info:
            write(
                ds, Update.create("doc:two#viewer@user:bob"), Update.create("doc:one#viewer@user:alice[cav]")
            )
        assert "doc:one#viewer@user:alice" in str(info.value)
        assert "doc:one#viewer@user:alice" in str(info.value.details.get("relationship"))
        assert ds.head_revision() == before
        assert read(ds) == {"doc:one#viewer@user:alice"}

    def test_create_twice_in_one_write_raises(self, ds: Datastore) -> None:
        with pytest.raises(RelationshipExists):
            write(ds, Update.create("doc:one#viewer@user:alice"), Update.create("doc:one#viewer@user:alice"))
        assert read(ds) == set()

    def test_failed_write_is_atomic_and_the_transaction_goes_on(self, ds: Datastore) -> None:
        write(ds, Update.create("doc:one#viewer@user:alice"))
        with ds.transaction() as tx:
            tx.write([Update.create("doc:two#viewer@user:bob")])
            with pytest.raises(RelationshipExists):
                tx.write(
                    [
                        Update.create("doc:three#viewer@user:carol"),
                        Update.touch("doc:two#viewer@user:bob[cav]"),
                        Update.delete("doc:one#viewer@user:alice"),
                        Update.create("doc:one#viewer@user:alice"),
                        Update.create("doc:one#viewer@user:alice"),
                    ]
                )
            assert strings(tx.query(Q(resource_type="doc"))) == {
                "doc:one#viewer@user:alice",
                "doc:two#viewer@user:bob",
            }
            tx.write([Update.create("doc:four#viewer@user:dave")])
        assert read(ds) == {
            "doc:one#viewer@user:alice",
            "doc:two#viewer@user:bob",
            "doc:four#viewer@user:dave",
        }

    def test_touch_inserts_then_replaces(self, ds: Datastore) -> None:
        write(ds, "doc:one#viewer@user:alice")
        assert read(ds) == {"doc:one#viewer@user:alice"}
        write(ds, 'doc:one#viewer@user:alice[cav:{"x":1}]')
        assert read(ds) == {'doc:one#viewer@user:alice[cav:{"x":1}]'}
        write(ds, 'doc:one#viewer@user:alice[cav:{"x":2}]')
        assert read(ds) == {'doc:one#viewer@user:alice[cav:{"x":2}]'}
        write(ds, "doc:one#viewer@user:alice[expiration:2031-01-01T00:00:00Z]")
        assert read(ds) == {"doc:one#viewer@user:alice[expiration:2031-01-01T00:00:00Z]"}
        write(ds, "doc:one#viewer@user:alice")
        assert read(ds) == {"doc:one#viewer@user:alice"}

    def test_touch_identical_changes_nothing(self, ds: Datastore) -> None:
        self.require(ds, "watch")
        first = write(ds, 'doc:one#viewer@user:alice[cav:{"x":1}][expiration:2031-01-01T00:00:00Z]')
        second = write(ds, 'doc:one#viewer@user:alice[cav:{"x":1}][expiration:2031-01-01T00:00:00Z]')
        (changeset,) = ds.changes(first)
        assert changeset.revision == second
        assert changeset.changes == ()
        assert read(ds) == {'doc:one#viewer@user:alice[cav:{"x":1}][expiration:2031-01-01T00:00:00Z]'}

    def test_delete_absent_is_a_no_op(self, ds: Datastore) -> None:
        write(ds, "doc:one#viewer@user:alice")
        write(ds, Update.delete("doc:one#viewer@user:bob"), Update.delete("doc:nope#viewer@user:alice"))
        assert read(ds) == {"doc:one#viewer@user:alice"}

    def test_delete_ignores_caveat_and_expiration(self, ds: Datastore) -> None:
        write(ds, 'doc:one#viewer@user:alice[cav:{"x":1}]')
        write(ds, Update.delete("doc:one#viewer@user:alice"))
        assert read(ds) == set()

    def test_updates_of_one_key_apply_in_order(self, ds: Datastore) -> None:
        write(
            ds,
            Update.touch('doc:one#viewer@user:alice[cav:{"x":1}]'),
            Update.touch("doc:one#viewer@user:alice"),
        )
        assert read(ds) == {"doc:one#viewer@user:alice"}
        write(ds, Update.create("doc:two#viewer@user:bob"), Update.delete("doc:two#viewer@user:bob"))
        assert read(ds, Q(resource_type="doc", resource_ids=("two",))) == set()
        write(ds, Update.delete("doc:one#viewer@user:alice"), Update.create("doc:one#viewer@user:alice[cav]"))
        assert read(ds) == {"doc:one#viewer@user:alice[cav]"}
        write(
            ds,
            Update.touch("doc:three#viewer@user:carol"),
            Update.touch("doc:three#viewer@user:carol[cav]"),
            Update.delete("doc:three#viewer@user:carol"),
            Update.touch("doc:three#viewer@user:carol[cav_two]"),
        )
        assert read(ds, Q(resource_ids=("three",))) == {"doc:three#viewer@user:carol[cav_two]"}

    def test_reads_in_a_transaction_see_its_own_writes(self, ds: Datastore) -> None:
        write(ds, "doc:one#viewer@user:alice", schema="definition user {}")
        with ds.transaction() as tx:
            tx.write([Update.create("doc:two#viewer@user:bob"), Update.delete("doc:one#viewer@user:alice")])
            assert strings(tx.query(Q(resource_type="doc"))) == {"doc:two#viewer@user:bob"}
            assert tx.exists(Q(resource_type="doc", resource_ids=("two",)))
            assert not tx.exists(Q(resource_type="doc", resource_ids=("one",)))
            assert tx.read_schema() == "definition user {}"
            tx.write_schema("definition user {}\ndefinition doc {}")
            assert tx.read_schema() == "definition user {}\ndefinition doc {}"
            # Others do not see any of it yet.
            assert read(ds) == {"doc:one#viewer@user:alice"}
            assert ds.snapshot(ds.head_revision()).read_schema() == "definition user {}"

    def test_delete_by_query(self, ds: Datastore) -> None:
        write(ds, *DATASET)
        with ds.transaction() as tx:
            deleted = tx.delete(Q(resource_type="doc", resource_ids=("one",), relation="viewer"))
            assert strings(deleted) == {"doc:one#viewer@user:alice", "doc:one#viewer@group:eng#member"}
            assert tx.delete(Q(resource_type="doc", resource_ids=("one",), relation="viewer")) == []
        assert read(ds, Q(resource_type="doc", resource_ids=("one",))) == {"doc:one#editor@user:bob"}
        with ds.transaction() as tx:
            deleted = tx.delete(Q(subject_type="user", subject_ids=("alice",)))
        assert strings(deleted) == {"folder:one#viewer@user:alice", "group:eng#member@user:alice"}
        assert read(ds, Q(subject_type="user", subject_ids=("alice",))) == set()

    def test_delete_by_query_with_limit(self, ds: Datastore) -> None:
        write(ds, *(f"doc:d{i:02d}#viewer@user:u{i}" for i in range(10)))
        remaining = {f"doc:d{i:02d}#viewer@user:u{i}" for i in range(10)}
        for expected in (3, 3, 3, 1, 0):
            with ds.transaction() as tx:
                deleted = strings(tx.delete(Q(resource_type="doc"), limit=3))
            assert len(deleted) == expected
            assert deleted <= remaining
            remaining -= deleted
            assert read(ds) == remaining

    def test_delete_then_recreate_in_one_transaction(self, ds: Datastore) -> None:
        write(ds, "doc:one#viewer@user:alice")
        with ds.transaction() as tx:
            assert strings(tx.delete(Q(resource_type="doc"))) == {"doc:one#viewer@user:alice"}
            tx.write([Update.create("doc:one#viewer@user:alice[cav]")])
            assert strings(tx.delete(Q(resource_type="doc"))) == {"doc:one#viewer@user:alice[cav]"}
            tx.write([Update.create("doc:one#viewer@user:alice")])
        assert read(ds) == {"doc:one#viewer@user:alice"}

    # -- rollback ---------------------------------------------------------------------------

    # -- bulk create ----------------------------------------------------------------------------

    def test_bulk_create_across_batches(self, ds: Datastore) -> None:
        count = 12_345  # more than one batch of every backend's bulk loader
        with ds.transaction() as tx:
            assert tx.bulk_create(rel(f"doc:d{i}#viewer@user:u{i % 97}") for i in range(count)) == count
            assert tx.bulk_create([]) == 0
        snapshot = ds.snapshot(tx.revision)
        assert len(list(snapshot.query(Q(resource_type="doc")))) == count
        assert strings(snapshot.query(Q(resource_type="doc", resource_ids=("d12344",)))) == {
            "doc:d12344#viewer@user:u25"
        }

    def test_bulk_create_of_a_live_or_repeated_key_raises_and_names_it(self, ds: Datastore) -> None:
        before = write(ds, Update.create("doc:live#viewer@user:a"))
        many = [rel(f"doc:n{i}#viewer@user:a") for i in range(3000)]
        with pytest.raises(RelationshipExists, match="doc:live#viewer@user:a"), ds.transaction() as tx:
            tx.bulk_create([*many, rel("doc:live#viewer@user:a[cav]"), rel("doc:z#viewer@user:a")])
        with pytest.raises(RelationshipExists, match="doc:twice#viewer@user:a"), ds.transaction() as tx:
            tx.bulk_create([rel("doc:twice#viewer@user:a"), *many, rel("doc:twice#viewer@user:a")])
        assert ds.head_revision() == before
        assert read(ds) == {"doc:live#viewer@user:a"}

    def test_bulk_create_into_a_new_store_with_a_repeated_key(self, ds: Datastore) -> None:
        before = ds.head_revision()
        many = [rel(f"doc:n{i}#viewer@user:a") for i in range(3000)]
        with pytest.raises(RelationshipExists, match="doc:twice#viewer@user:a"), ds.transaction() as tx:
            tx.bulk_create([rel("doc:twice#viewer@user:a"), *many, rel("doc:twice#viewer@user:a[cav]")])
        assert ds.head_revision() == before
        assert read(ds) == set()
        # the failed call leaves its transaction usable, with every constraint in place
        with ds.transaction() as tx:
            with pytest.raises(RelationshipExists):
                tx.bulk_create([rel("doc:x#viewer@user:a"), rel("doc:x#viewer@user:a")])
            assert tx.bulk_create(many[:10]) == 10
            with pytest.raises(RelationshipExists):
                tx.write([Update.create("doc:n1#viewer@user:a")])
        assert read(ds) == {str(r) for r in many[:10]}

    def test_bulk_create_over_an_expired_relationship(self, ds: Datastore) -> None:
        write(ds, Update.create("doc:gone#viewer@user:a[expiration:2000-01-01T00:00:00Z]"))
        with ds.transaction() as tx:
            assert tx.bulk_create([rel("doc:gone#viewer@user:a"), rel("doc:y#viewer@user:b[cav]")]) == 2
        assert read(ds) == {"doc:gone#viewer@user:a", "doc:y#viewer@user:b[cav]"}

    def test_exception_rolls_everything_back(self, ds: Datastore) -> None:
        base = write(ds, "doc:one#viewer@user:alice", "doc:two#viewer@user:bob", schema="v1")

        class Boom(Exception):
            pass

        with pytest.raises(Boom), ds.transaction() as tx:
            tx.write(
                [
                    Update.touch("doc:one#viewer@user:alice[cav]"),
                    Update.delete("doc:two#viewer@user:bob"),
                    Update.create("doc:three#viewer@user:carol"),
                ]
            )
            tx.delete(Q(resource_type="doc", resource_ids=("one",)))
            tx.write_schema("v2")
            raise Boom()
        assert ds.head_revision() == base
        assert read(ds) == {"doc:one#viewer@user:alice", "doc:two#viewer@user:bob"}
        assert ds.snapshot(base).read_schema() == "v1"
        if ds.capabilities.watch:
            assert list(ds.changes(base)) == []
        after = write(ds, "doc:four#viewer@user:dave")
        assert after > base
        assert read(ds) == {
            "doc:one#viewer@user:alice",
            "doc:two#viewer@user:bob",
            "doc:four#viewer@user:dave",
        }
