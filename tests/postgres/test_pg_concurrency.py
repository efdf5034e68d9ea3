"""Revisions under concurrency on PostgreSQL: many writers in threads and processes, readers at
random revisions, the changelog across processes, and commits out of xid order."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from support.postgres import batch_reader, batch_writer, commit_and_report
from zanzi.model import Update
from zanzi.store.base import ChangeKind, IntRevision, RelationshipQuery
from zanzi.store.sql.postgres import PostgresDatastore

SIZE = 5  # relationships per batch (per transaction)


def visible_batches(ds: PostgresDatastore, revision: int) -> set[str]:
    counts: dict[str, int] = {}
    for rel in ds.snapshot(IntRevision(revision)).query(RelationshipQuery(resource_type="batch")):
        counts[rel.resource.id] = counts.get(rel.resource.id, 0) + 1
    assert all(n == SIZE for n in counts.values()), counts
    return set(counts)


def test_snapshots_are_exact_with_writers_in_threads_and_processes(ds: PostgresDatastore, url: str) -> None:
    """Writers in 2 processes x 2 threads and 3 threads here, each committing batches of SIZE
    relationships; readers (threads here and a process) read at random revisions meanwhile and
    must always see whole batches, growing with the revision. Afterwards, the batches visible
    at every revision are exactly those whose commit returned a revision at or before it."""
    start = int(str(ds.head_revision()))
    spawn = multiprocessing.get_context("spawn")
    results: list[tuple[str, int]] = []
    observed: list[tuple[int, list[str]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def local_reader(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while not stop.is_set():
                head = int(str(ds.head_revision()))
                revision = rnd.randint(start, head)
                observed.append((revision, sorted(visible_batches(ds, revision))))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=local_reader, args=(seed,)) for seed in range(2)]
    for thread in readers:
        thread.start()
    with ProcessPoolExecutor(3, mp_context=spawn) as processes, ThreadPoolExecutor(3) as threads:
        remote = [processes.submit(batch_writer, url, f"p{n}", 15, SIZE) for n in range(2)]
        remote_reader = processes.submit(batch_reader, url, 40, SIZE, 7)
        local = [threads.submit(batch_writer, url, f"t{n}", 15, SIZE) for n in range(3)]
        for future in remote + local:
            results.extend(future.result(timeout=120))
        observed.extend(remote_reader.result(timeout=120))
    stop.set()
    for thread in readers:
        thread.join(30)
    assert not errors, errors

    revision_of = dict(results)
    assert len(results) == 75 and len(set(revision_of.values())) == 75
    head = int(str(ds.head_revision()))
    assert sorted(revision_of.values()) == list(range(start + 1, head + 1))  # dense, one each

    def expected(revision: int) -> set[str]:
        return {rid for rid, rev in revision_of.items() if rev <= revision}

    # Monotone and exact, for everything the readers saw while the writers ran...
    for revision, batches in observed:
        assert set(batches) == expected(revision), revision
    # ...and for every revision now.
    for revision in range(start, head + 1):
        assert visible_batches(ds, revision) == expected(revision), revision

    # The changelog lists each transaction once, in revision order, with its whole batch.
    sets = list(ds.changes(IntRevision(start)))
    assert [int(str(c.revision)) for c in sets] == list(range(start + 1, head + 1))
    by_revision = {rev: rid for rid, rev in revision_of.items()}
    for changeset in sets:
        rid = by_revision[int(str(changeset.revision))]
        assert {(c.kind, c.relationship.resource.id) for c in changeset.changes} == {(ChangeKind.TOUCH, rid)}
        assert len(changeset.changes) == SIZE


def test_a_late_commit_with_a_lower_xid_is_not_skipped_by_a_watcher(
    open_store: Callable[..., PostgresDatastore],
) -> None:
    """T1 starts first (lower xid) and stays open; T2 starts later, commits; a watcher reads the
    changelog past T2; then T1 commits. T1 gets the next revision and the watcher, asking for
    what came after T2, receives it."""
    writer, watcher = open_store(), open_store()
    start = watcher.head_revision()
    t1_open = threading.Event()
    release = threading.Event()
    outcome: dict[str, object] = {}

    def slow() -> None:
        with writer.transaction() as tx:
            tx.write([Update.create("doc:slow#viewer@user:alice")])
            outcome["xid1"] = tx._xid  # type: ignore[attr-defined]
            t1_open.set()
            assert release.wait(30)
        outcome["r1"] = tx.revision

    thread = threading.Thread(target=slow)
    thread.start()
    assert t1_open.wait(30)
    with writer.transaction() as tx2:
        tx2.write([Update.create("doc:fast#viewer@user:bob")])
        xid2 = tx2._xid  # type: ignore[attr-defined]
    r2 = tx2.revision
    assert int(str(outcome["xid1"])) < int(xid2)  # T1 really has the lower xid

    seen = list(watcher.changes(start))
    assert [c.revision for c in seen] == [r2]
    assert watcher.snapshot(r2).exists(RelationshipQuery(resource_type="doc", resource_ids=("fast",)))
    assert not watcher.snapshot(r2).exists(RelationshipQuery(resource_type="doc", resource_ids=("slow",)))

    release.set()
    thread.join(30)
    r1 = outcome["r1"]
    assert isinstance(r1, IntRevision) and r1 > r2
    assert watcher.wait_for_change(r2, 10.0)
    later = list(watcher.changes(r2))
    assert [c.revision for c in later] == [r1]
    assert [str(c.relationship) for c in later[0].changes] == ["doc:slow#viewer@user:alice"]
    # The revision of T2 still reads without T1; T1's revision reads both.
    assert not watcher.snapshot(r2).exists(RelationshipQuery(resource_type="doc", resource_ids=("slow",)))
    assert len(list(watcher.snapshot(r1).query(RelationshipQuery(resource_type="doc")))) == 2


def test_changes_across_processes_have_no_gaps_or_duplicates(ds: PostgresDatastore, url: str) -> None:
    """Writers in other processes; a watcher here follows the changelog with wait_for_change
    (woken by LISTEN/NOTIFY) and must receive every revision exactly once, in order."""
    start = ds.head_revision()
    received: list[int] = []
    done = threading.Event()

    def watch() -> None:
        after = start
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (done.is_set() and not ds.wait_for_change(after, 0)):
            for changeset in ds.changes(after):
                received.append(int(str(changeset.revision)))
                after = changeset.revision
            ds.wait_for_change(after, 0.5)

    thread = threading.Thread(target=watch)
    thread.start()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=spawn) as pool:
        futures = [
            pool.submit(commit_and_report, url, f"doc:p{n}_{i}#viewer@user:u")
            for n in range(3)
            for i in range(8)
        ]
        revisions = sorted(f.result(timeout=120) for f in futures)
    done.set()
    thread.join(60)
    assert received == sorted(received) == revisions
    assert len(set(received)) == len(received) == 24


def test_commit_throughput(ds: PostgresDatastore) -> None:
    """Commits from 8 threads; prints commits per second (the serialized commit step bounds
    it, see zanzi.store.sql.postgres). Not asserted beyond a sanity floor."""
    count = 400
    started = time.perf_counter()

    def work(n: int) -> None:
        for i in range(count // 8):
            with ds.transaction() as tx:
                tx.write([Update.touch(f"doc:d{n}_{i}#viewer@user:u{i}")])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    elapsed = time.perf_counter() - started
    print(f"\n{count} single-relationship write transactions from 8 threads: {count / elapsed:.0f} commits/s")
    assert len(list(ds.changes(IntRevision(1)))) == count
