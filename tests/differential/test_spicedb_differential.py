"""Differential test: random schemas and relationships (seeded), every Check, LookupResources
and LookupSubjects answer compared with the real SpiceDB engine (v1.54, ../shared/peers).

Skipped, with the reason, when the peer is not installed. Half the cases have cyclic data
(groups that contain each other, self-parented objects): for those only Check is compared,
because SpiceDB's own LookupResources / LookupSubjects do not terminate on cyclic data (they run
until the client's deadline and keep the CPU busy afterwards). Questions SpiceDB refuses (its
depth limit on cyclic data) are not compared; their count is reported on failure.
"""

from __future__ import annotations

import os

import pytest

from support.randomschema import USER_IDS, generate
from support.spicedb_peer import SpiceDBPeer, available, expand_tree, normalize_zanzi_tree
from zanzi import errors
from zanzi.api.service import Service
from zanzi.model import Consistency, Permissionship

pytestmark = pytest.mark.peer
SEEDS = int(os.environ.get("ZANZI_DIFF_SEEDS", "40"))
FULL = Consistency.fully_consistent()
_NAMES = {
    Permissionship.HAS_PERMISSION: "has",
    Permissionship.NO_PERMISSION: "no",
    Permissionship.CONDITIONAL_PERMISSION: "conditional",
}


@pytest.fixture(scope="module")
def peer_installed() -> None:
    reason = available()
    if reason:
        pytest.skip(reason)


def _zanzi_check(service: Service, r: str, p: str, s: str) -> str:
    try:
        return _NAMES[service.check(r, p, s, consistency=FULL).permissionship]
    except errors.MaxDepthExceeded as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("seed", range(SEEDS))
def test_zanzi_agrees_with_spicedb(seed: int, peer_installed: None) -> None:
    case = generate(1000 + seed, cycles=seed % 2 == 0)
    peer_db = SpiceDBPeer()  # a fresh in-memory SpiceDB per case (about 0.1 s to start)
    try:
        peer_db.write_schema(case.schema)
        peer_db.write_relationships(case.relationships)
        with Service.open("memory://") as zanzi:
            zanzi.write_schema(case.schema)
            zanzi.write_relationships(case.relationships)
            subjects = [f"user:{u}" for u in USER_IDS] + [f"group:g{i}#member" for i in range(2)]
            items = [
                (f"{t}:{i}", name, s)
                for t, ids in case.resources.items()
                for i in ids
                for name in case.names[t]
                for s in subjects
            ]
            theirs = peer_db.check_bulk(items)
            mismatches, refused = [], 0
            for (r, p, s), want in zip(items, theirs, strict=True):
                got = _zanzi_check(zanzi, r, p, s)
                if want.startswith("error") or got.startswith("error"):
                    refused += 1
                    continue
                if got != want:
                    mismatches.append(f"check {r}#{p}@{s}: zanzi={got} spicedb={want}")
            lookups = not case.cycles
            for t, names in case.names.items() if lookups else ():
                for name in names:
                    for s in subjects:
                        want_lr = peer_db.lookup_resources(t, name, s)
                        if isinstance(want_lr, str):
                            refused += 1
                            continue
                        try:
                            got_lr = {
                                x.resource_id for x in zanzi.lookup_resources(t, name, s, consistency=FULL)
                            }
                        except errors.MaxDepthExceeded:
                            refused += 1
                            continue
                        if got_lr != want_lr:
                            mismatches.append(
                                f"lookup_resources {t}#{name}@{s}: "
                                f"zanzi={sorted(got_lr)} spicedb={sorted(want_lr)}"
                            )
            for t, ids in case.resources.items() if lookups else ():
                for i in ids:
                    for name in case.names[t]:
                        for stype, srel in [("user", ""), ("group", "member")]:
                            want_ls = peer_db.lookup_subjects(f"{t}:{i}", name, stype, srel)
                            if isinstance(want_ls, str):
                                refused += 1
                                continue
                            results = list(
                                zanzi.lookup_subjects(
                                    f"{t}:{i}", name, stype, subject_relation=srel or None, consistency=FULL
                                )
                            )
                            concrete = {x.subject.id for x in results if x.subject.id != "*"}
                            wild = next((x for x in results if x.subject.id == "*"), None)
                            excluded = {e.subject.id for e in wild.excluded} if wild else None
                            if (concrete, excluded) != want_ls:
                                mismatches.append(
                                    f"lookup_subjects {t}:{i}#{name} {stype}: zanzi={sorted(concrete)} "
                                    f"wildcard-excluding={excluded} spicedb={sorted(want_ls[0])} "
                                    f"wildcard-excluding={want_ls[1]}"
                                )
    finally:
        peer_db.close()
    assert not mismatches, (
        f"seed {case.seed} ({refused} refused by one side)\n{case.schema}\n"
        + "\n".join(case.relationships)
        + "\n--\n"
        + "\n".join(mismatches[:30])
    )


@pytest.mark.parametrize("seed", range(max(1, SEEDS // 4)))
def test_expand_trees_agree_with_spicedb(seed: int, peer_installed: None) -> None:
    case = generate(5000 + seed, cycles=False)
    peer_db = SpiceDBPeer()
    mismatches: list[str] = []
    try:
        peer_db.write_schema(case.schema)
        peer_db.write_relationships(case.relationships)
        with Service.open("memory://") as zanzi:
            zanzi.write_schema(case.schema)
            zanzi.write_relationships(case.relationships)
            for t, ids in case.resources.items():
                for i in ids:
                    for name in case.names[t]:
                        want = expand_tree(peer_db, f"{t}:{i}", name)
                        if isinstance(want, str):
                            continue
                        got = normalize_zanzi_tree(zanzi.expand(f"{t}:{i}", name, consistency=FULL).tree)
                        if got != want:
                            mismatches.append(f"expand {t}:{i}#{name}:\n  zanzi={got}\n  spicedb={want}")
    finally:
        peer_db.close()
    assert not mismatches, f"seed {case.seed}\n{case.schema}\n" + "\n".join(mismatches[:5])


CONTEXTS: list[dict[str, int]] = [{}, {"level": 3}, {"level": 3, "required": 2}, {"level": 9}]


@pytest.mark.parametrize("seed", range(max(1, SEEDS // 2)))
def test_caveated_checks_agree_with_spicedb(seed: int, peer_installed: None) -> None:
    """Caveated relationships (stored context or none) under unions, intersections, exclusions
    and arrows: HAS / NO / CONDITIONAL must match SpiceDB for several request contexts."""
    case = generate(9000 + seed, cycles=False, caveats=True)
    peer_db = SpiceDBPeer()
    mismatches: list[str] = []
    refused = 0
    try:
        peer_db.write_schema(case.schema)
        peer_db.write_relationships(case.relationships)
        with Service.open("memory://") as zanzi:
            zanzi.write_schema(case.schema)
            zanzi.write_relationships(case.relationships)
            subjects = [f"user:{u}" for u in USER_IDS]
            items = [
                (f"{t}:{i}", name, s)
                for t, ids in case.resources.items()
                for i in ids
                for name in case.names[t]
                for s in subjects
            ]
            for context in CONTEXTS:
                theirs = peer_db.check_bulk(items, context)
                for (r, p, s), want in zip(items, theirs, strict=True):
                    try:
                        got = _NAMES[zanzi.check(r, p, s, consistency=FULL, context=context).permissionship]
                    except errors.MaxDepthExceeded:
                        got = "error"
                    if want.startswith("error") or got == "error":
                        refused += 1
                        continue
                    if got != want:
                        mismatches.append(f"check {r}#{p}@{s} with {context}: zanzi={got} spicedb={want}")
    finally:
        peer_db.close()
    assert not mismatches, (
        f"seed {case.seed} ({refused} refused)\n{case.schema}\n"
        + "\n".join(case.relationships)
        + "\n--\n"
        + "\n".join(mismatches[:30])
    )
