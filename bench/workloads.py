"""Seeded, generated workloads: a schema, a stream of relationship strings, and the probes to ask.

- ``docs``: the shape of ../shared/peers/spicedb_smoke.py (about 32k relationships);
- ``scale-100k``, ``scale-1M``, ``scale-10M``: the same shape, multiplied;
- ``deep``: nested-group chains and folder chains of depth 1, 10 and 30;
- ``wide``: a group of 100k members; a document shared with 10k groups;
- ``caveated``: docs with 20% of its relationships caveated, checked with a context.

Everything is regenerated from the seed in each process; nothing is stored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.docs_graph import CAVEATED_SCHEMA, SCHEMA, DocsGraph
from bench.probes import CheckProbe, LookupProbe, SubjectsProbe

DOCS_SIZE = 32_084
SCALES = {"scale-100k": 100_000, "scale-1M": 1_000_000, "scale-10M": 10_000_000}
NAMES = ("docs", *SCALES, "deep", "wide", "caveated", "tiny")
FAMILIES = {"docs": ("docs",), "scale": tuple(SCALES), "deep": ("deep",), "wide": ("wide",)}
FAMILIES["caveated"] = ("caveated",)
DEPTHS = (1, 10, 30)
WRITE_DOCUMENT = "document:bench_written"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many distinct probes to generate."""

    check_pool: int = 20_000
    bulk_batches: int = 20


@dataclass
class Workload:
    name: str
    schema: str
    relationships: Callable[[], Iterator[str]]
    count: int
    checks: dict[str, list[CheckProbe]]
    bulk: list[CheckProbe]
    lookups: list[LookupProbe]
    subject_lookups: list[SubjectsProbe]
    sentinel: CheckProbe  # allowed once the whole workload is visible
    reference: Callable[[CheckProbe], str | None] | None = None
    params: dict[str, Any] = field(default_factory=dict)


def expand(names: list[str]) -> list[str]:
    """Family names (``scale``) and workload names (``scale-1M``) -> workload names, in order."""
    out: list[str] = []
    for n in names:
        for w in FAMILIES.get(n, (n,)):
            if w not in NAMES:
                raise ValueError(f"unknown workload {n!r}; choose from {', '.join((*FAMILIES, *NAMES))}")
            if w not in out:
                out.append(w)
    return out


def approx_count(name: str) -> int:
    """Relationships in a workload, without generating it."""
    known = {"docs": DOCS_SIZE, "caveated": DOCS_SIZE, "deep": 20_400, "wide": 130_001, "tiny": 650}
    return SCALES.get(name) or known.get(name, DOCS_SIZE)


def build(name: str, seed: int, sizes: Sizes = Sizes()) -> Workload:
    if name == "docs":
        return _docs(name, seed, 1.0, sizes)
    if name == "tiny":  # for the bench's own tests
        return _docs(name, seed, 0.02, sizes)
    if name in SCALES:
        return _docs(name, seed, SCALES[name] / DOCS_SIZE, sizes)
    if name == "caveated":
        return _docs(name, seed, 1.0, sizes, caveats=0.2)
    if name == "deep":
        return _deep(seed, sizes)
    if name == "wide":
        return _wide(seed, sizes)
    raise ValueError(f"unknown workload {name!r}")


# -- docs, scale, caveated --------------------------------------------------------------------


def _docs(name: str, seed: int, scale: float, sizes: Sizes, caveats: float = 0.0) -> Workload:
    g = DocsGraph.generate(seed, scale)
    # One generator per kind of probe, each drawn in sequence, so that a smaller plan asks a
    # prefix of the same probes (and modes with different plans stay comparable).
    context = _context if caveats else None
    checks = {"check": _docs_pairs(g, random.Random(seed + 1), sizes.check_pool, context)}
    if caveats:
        checks = {
            "check (context)": checks["check"],
            "check (no context)": _docs_pairs(
                g, random.Random(seed + 2), max(200, sizes.check_pool // 10), None
            ),
        }
    bulk = _docs_pairs(g, random.Random(seed + 3), 100 * sizes.bulk_batches, context)
    rng = random.Random(seed + 4)
    last = g.n_docs - 1
    sentinel = CheckProbe(f"document:d{last}", "edit", f"user:u{g.doc_editor[last]}")

    def reference(p: CheckProbe) -> str | None:
        if caveats or p.permission != "view" or not p.subject.startswith("user:u"):
            return None
        doc, user = int(p.resource.removeprefix("document:d")), int(p.subject.removeprefix("user:u"))
        return "has" if g.can_view(doc, user) else "no"

    return Workload(
        name=name,
        schema=CAVEATED_SCHEMA if caveats else SCHEMA,
        relationships=lambda: g.relationships(caveats, seed),
        count=g.count(),
        checks=checks,
        bulk=bulk,
        lookups=_docs_lookups(g, rng, bool(caveats)),
        subject_lookups=_docs_subject_lookups(g, rng),
        sentinel=sentinel,
        reference=reference,
        params={"relationships": g.count(), "scale": scale, "caveated": caveats},
    )


def _context(rng: random.Random) -> dict[str, Any]:
    return {"level": rng.randint(1, 5), "user_ip": rng.choice(("10.1.2.3", "192.168.7.7", "172.16.0.1"))}


def _docs_pairs(
    g: DocsGraph,
    rng: random.Random,
    n: int,
    context: Callable[[random.Random], dict[str, Any]] | None,
) -> list[CheckProbe]:
    """A fixed mix: half random (user, document) pairs (nearly all denied), half pairs that
    the structure makes likely to be allowed: the editor, a member of a group viewing the
    document or one of its folders (through nesting), a viewer of an ancestor folder."""
    out: list[CheckProbe] = []
    seen: set[tuple[int, int]] = set()
    while len(out) < n and len(seen) < g.n_docs * g.n_users:
        d = rng.randrange(g.n_docs)
        kind = len(out) % 4
        user = rng.randrange(g.n_users)
        if kind == 1:
            user = g.doc_editor[d]
        elif kind == 3:
            user = _likely_viewer(g, d, rng)
        if (d, user) in seen:
            continue
        seen.add((d, user))
        out.append(CheckProbe(f"document:d{d}", "view", f"user:u{user}", context(rng) if context else None))
    return out


def _likely_viewer(g: DocsGraph, d: int, rng: random.Random) -> int:
    folders = [f for f in g.ancestors(g.doc_folder[d]) if g.folder_user[f] >= 0 or g.folder_group[f] >= 0]
    choice = rng.random()
    if d in g.doc_group and (choice < 0.3 or not folders):
        return g.some_member(g.doc_group[d], rng)
    if folders:
        f = rng.choice(folders)
        if g.folder_group[f] >= 0 and (g.folder_user[f] < 0 or rng.random() < 0.5):
            return g.some_member(g.folder_group[f], rng)
        return g.folder_user[f]
    return g.doc_viewer[d]


def _docs_lookups(g: DocsGraph, rng: random.Random, caveated: bool) -> list[LookupProbe]:
    """Subjects whose result counts are nearest 10, 1k, 3.5k (the issue's target) and 10k,
    measured by the reference evaluator over candidate users: a random sample plus the
    viewers of the folders nearest the root (they see the most)."""
    candidates = set(rng.sample(range(g.n_users), min(g.n_users, 600)))
    for f in range(1, min(g.n_folders, 121)):
        if g.folder_user[f] >= 0:
            candidates.add(g.folder_user[f])
        if g.folder_group[f] >= 0:
            candidates.update(sorted(g.members_of(g.folder_group[f]))[:3])
    counts = sorted((g.viewable_count(u), u) for u in sorted(candidates))
    out: list[LookupProbe] = []
    used: set[int] = set()
    for target, label in ((10, "~10"), (1000, "~1k"), (3500, "~3.5k"), (10_000, "~10k")):
        count, user = min(counts, key=lambda cu: (abs(cu[0] - target), cu[1]))
        if user in used:
            continue
        used.add(user)
        ctx = {"level": 3, "user_ip": "10.1.2.3"} if caveated else None
        out.append(
            LookupProbe(
                f"LR {label} ({count})" if not caveated else f"LR {label}",
                "document",
                "view",
                f"user:u{user}",
                None if caveated else count,
                ctx,
            )
        )
    return out


def _docs_subject_lookups(g: DocsGraph, rng: random.Random) -> list[SubjectsProbe]:
    docs = rng.sample(range(g.n_docs), min(g.n_docs, 300))
    counts = sorted((g.viewers_count(d), d) for d in docs)
    median, largest = counts[len(counts) // 2], counts[-1]
    return [
        SubjectsProbe(f"LS median ({median[0]})", f"document:d{median[1]}", "view", "user", median[0]),
        SubjectsProbe(f"LS largest ({largest[0]})", f"document:d{largest[1]}", "view", "user", largest[0]),
    ]


# -- deep -------------------------------------------------------------------------------------

DEEP_CHAINS, DEEP_MEMBERS = 100, 20


def _deep(seed: int, sizes: Sizes) -> Workload:
    """For each depth D: 100 documents viewed by a group nested D deep (the users are in the
    innermost group), and 100 documents in a folder D levels below the folder that has the
    viewers. Denied probes ask users that are nowhere, so the whole chain is walked."""
    rng = random.Random(seed)

    def relationships() -> Iterator[str]:
        for depth in DEPTHS:
            for k in range(DEEP_CHAINS):
                base = f"d{depth}_{k}"
                for m in range(DEEP_MEMBERS):
                    yield f"group:{base}_0#member@user:{base}_gu{m}"
                for i in range(1, depth):
                    yield f"group:{base}_{i}#member@group:{base}_{i - 1}#member"
                yield f"document:{base}_g#viewer@group:{base}_{depth - 1}#member"
                for m in range(DEEP_MEMBERS):
                    yield f"folder:{base}_{depth - 1}#viewer@user:{base}_fu{m}"
                for i in range(depth - 1):
                    yield f"folder:{base}_{i}#parent@folder:{base}_{i + 1}"
                yield f"document:{base}_f#folder@folder:{base}_0"

    count = sum(DEEP_CHAINS * (2 * DEEP_MEMBERS + 2 * (d - 1) + 2) for d in DEPTHS)
    per_label = 2 * DEEP_CHAINS * DEEP_MEMBERS  # every member once, as many outsiders
    checks: dict[str, list[CheckProbe]] = {}
    for kind, suffix, member in (("groups", "g", "gu"), ("folders", "f", "fu")):
        for depth in DEPTHS:
            pool = []
            for i in range(per_label):
                k, m = (i // 2) % DEEP_CHAINS, (i // (2 * DEEP_CHAINS)) % DEEP_MEMBERS
                user = f"user:d{depth}_{k}_{member}{m}" if i % 2 == 0 else f"user:nobody_{i}"
                pool.append(CheckProbe(f"document:d{depth}_{k}_{suffix}", "view", user))
            rng.shuffle(pool)
            checks[f"check {kind} d={depth}"] = pool

    def reference(p: CheckProbe) -> str | None:
        return "no" if "nobody" in p.subject else "has"

    all_probes = [p for pool in checks.values() for p in pool]
    return Workload(
        name="deep",
        schema=SCHEMA,
        relationships=relationships,
        count=count,
        checks={label: pool[: sizes.check_pool] for label, pool in checks.items()},
        bulk=rng.sample(all_probes, 2000)[: 100 * sizes.bulk_batches],
        lookups=[LookupProbe(f"LR groups d={d}", "document", "view", f"user:d{d}_0_gu0", 1) for d in DEPTHS],
        subject_lookups=[
            SubjectsProbe(f"LS folders d={d}", f"document:d{d}_0_f", "view", "user", DEEP_MEMBERS)
            for d in DEPTHS
        ],
        sentinel=CheckProbe(
            f"document:d{DEPTHS[-1]}_{DEEP_CHAINS - 1}_f", "view", f"user:d30_{DEEP_CHAINS - 1}_fu0"
        ),
        reference=reference,
        params={"relationships": count, "depths": DEPTHS},
    )


# -- wide -------------------------------------------------------------------------------------

WIDE_MEMBERS, WIDE_GROUPS, WIDE_GROUP_SIZE = 100_000, 10_000, 2


def _wide(seed: int, sizes: Sizes) -> Workload:
    """``document:big_group`` is viewed by one group of 100k users; ``document:many_groups`` by
    10k groups of 2 users each."""

    def relationships() -> Iterator[str]:
        for i in range(WIDE_MEMBERS):
            yield f"group:big#member@user:w{i}"
        yield "document:big_group#viewer@group:big#member"
        for j in range(WIDE_GROUPS):
            for m in range(WIDE_GROUP_SIZE):
                yield f"group:many{j}#member@user:m{j}_{m}"
            yield f"document:many_groups#viewer@group:many{j}#member"

    count = WIDE_MEMBERS + 1 + WIDE_GROUPS * (WIDE_GROUP_SIZE + 1)
    n = min(sizes.check_pool, 10_000)
    rng = random.Random(seed)
    big = [
        CheckProbe(
            "document:big_group",
            "view",
            f"user:w{rng.randrange(WIDE_MEMBERS)}" if i % 2 else f"user:nobody_{i}",
        )
        for i in range(n)
    ]
    rng = random.Random(seed + 1)
    many = [
        CheckProbe(
            "document:many_groups",
            "view",
            f"user:m{rng.randrange(WIDE_GROUPS)}_{rng.randrange(WIDE_GROUP_SIZE)}"
            if i % 2
            else f"user:nobody_{i}",
        )
        for i in range(n)
    ]

    def reference(p: CheckProbe) -> str | None:
        return "no" if "nobody" in p.subject else "has"

    return Workload(
        name="wide",
        schema=SCHEMA,
        relationships=relationships,
        count=count,
        checks={"check 100k-member group": _dedupe(big), "check doc shared with 10k groups": _dedupe(many)},
        bulk=[p for i in range(sizes.bulk_batches) for p in (big, many)[i % 2][i * 100 : i * 100 + 100]],
        lookups=[
            LookupProbe("LR member of 100k group", "document", "view", "user:w7", 1),
            LookupProbe("LR member of 1 of 10k groups", "document", "view", "user:m7_0", 1),
        ],
        subject_lookups=[
            SubjectsProbe("LS 100k-member group", "document:big_group", "view", "user", WIDE_MEMBERS),
            SubjectsProbe(
                "LS 10k groups", "document:many_groups", "view", "user", WIDE_GROUPS * WIDE_GROUP_SIZE
            ),
        ],
        sentinel=CheckProbe("document:many_groups", "view", f"user:m{WIDE_GROUPS - 1}_0"),
        reference=reference,
        params={"relationships": count},
    )


def _dedupe(probes: list[CheckProbe]) -> list[CheckProbe]:
    return list({p.key(): p for p in probes}.values())
