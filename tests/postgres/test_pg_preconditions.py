"""Preconditions under concurrent writers on PostgreSQL: a precondition holds at the revision
its write commits at, never only at the moment it was checked."""

from __future__ import annotations

import threading
from collections.abc import Callable

from zanzi import errors
from zanzi.api.service import Service
from zanzi.model import Consistency, Operation, Precondition
from zanzi.store.base import ChangeKind
from zanzi.store.sql.postgres import PostgresDatastore

SCHEMA = """
definition user {}
definition doc {
    relation owner: user
    relation viewer: user
}
"""
ROUNDS = 40
WRITERS = 4


def _race(
    services: list[Service], write: Callable[[Service, int, int], None], rounds: int = ROUNDS
) -> list[int]:
    """Each round, WRITERS threads (over the given services, i.e. separate pools) call
    ``write(service, round, writer)`` at once; the number that succeeded in each round."""
    wins = [0] * rounds
    lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(k: int) -> None:
        service = services[k % len(services)]
        for i in range(rounds):
            barrier.wait()
            try:
                write(service, i, k)
            except errors.FailedPrecondition:
                continue
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)
                continue
            with lock:
                wins[i] += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    return wins


def test_must_not_match_admits_one_writer(open_store: Callable[..., PostgresDatastore]) -> None:
    services = [Service(open_store()), Service(open_store())]
    services[0].write_schema(SCHEMA)

    def claim(service: Service, i: int, k: int) -> None:
        # "Become the owner unless there is one": exactly one claimant may win each round.
        service.write_relationships(
            [f"doc:r{i}#owner@user:w{k}"], preconditions=[Precondition.must_not_match(f"doc:r{i}#owner")]
        )

    wins = _race(services, claim)
    assert wins == [1] * ROUNDS
    owners = [r for r in services[1].read_relationships("doc") if r.relation == "owner"]
    assert len(owners) == ROUNDS


def test_must_match_sees_a_concurrent_delete(open_store: Callable[..., PostgresDatastore]) -> None:
    store = open_store()
    services = [Service(store), Service(open_store())]
    services[0].write_schema(SCHEMA)
    services[0].write_relationships([f"doc:r{i}#owner@user:boss" for i in range(ROUNDS)])
    start = store.head_revision()

    def act(service: Service, i: int, k: int) -> None:
        if k == 0:  # the owner leaves...
            service.write_relationships([f"doc:r{i}#owner@user:boss"], operation=Operation.DELETE)
        else:  # ...while others add viewers, but only while the owner is there
            service.write_relationships(
                [f"doc:r{i}#viewer@user:w{k}"],
                preconditions=[Precondition.must_match(f"doc:r{i}#owner@user:boss")],
            )

    _race(services, act)
    # In revision order, no viewer was added once the owner's removal had committed.
    gone: set[str] = set()
    for changeset in store.changes(start):
        for change in changeset.changes:
            doc = change.relationship.resource.id
            if change.relationship.relation == "owner" and change.kind is ChangeKind.DELETE:
                gone.add(doc)
            elif change.relationship.relation == "viewer":
                assert doc not in gone, f"a viewer of {doc} was added after its owner left"
    assert gone == {f"r{i}" for i in range(ROUNDS)}


WITHOUT_VIEWER = """
definition user {}
definition doc {
    relation owner: user
}
"""


def test_a_schema_change_never_orphans_a_concurrent_write(
    open_store: Callable[..., PostgresDatastore],
) -> None:
    """Each round one thread removes `doc#viewer` from the schema (refused while viewers exist)
    while others add viewers (refused once the relation is gone): whatever wins, the data never
    holds a relationship its schema does not allow."""
    services = [Service(open_store()), Service(open_store())]
    full = Consistency.fully_consistent()
    conflicts = [0]

    def act(service: Service, i: int, k: int) -> None:
        try:
            if k == 0:
                service.write_schema(WITHOUT_VIEWER)
            else:
                service.write_relationships([f"doc:r{i}#viewer@user:w{k}"])
        except (errors.SchemaInUse, errors.UnknownRelation):
            raise errors.FailedPrecondition("lost the race") from None
        except errors.WriteConflict:
            conflicts[0] += 1
            raise errors.FailedPrecondition("lost the race, told to retry") from None

    for i in range(ROUNDS):
        services[0].write_schema(SCHEMA)
        services[0].delete_relationships("doc")
        _race(services, lambda service, _, k, i=i: act(service, i, k), rounds=1)
        schema = services[0].read_schema(full).text
        viewers = [
            r for r in services[0].read_relationships("doc", consistency=full) if r.relation == "viewer"
        ]
        assert not (viewers and "viewer" not in schema), (i, viewers)
