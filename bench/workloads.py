"""Seeded, generated workloads for benchmarks: schema text plus relationship strings.

``docs`` has the shape of ../shared/peers/spicedb_smoke.py: 1,000 users, 100 groups nested 5
deep, 200 folders in a ternary tree, 10,000 documents -- about 32k relationships -- scaled by
``scale`` (users, groups, folders and documents multiplied).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DOCS_SCHEMA = """
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation viewer: user | group#member
    relation editor: user
    permission edit = editor
    permission view = viewer + edit + folder->view
}
"""


@dataclass
class Workload:
    name: str
    schema: str
    relationships: list[str]
    users: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)


def docs(seed: int = 42, scale: float = 1.0) -> Workload:
    rng = random.Random(seed)
    n_users = max(10, int(1000 * scale))
    per_level = max(2, int(20 * scale))
    levels = 5
    n_folders = max(4, int(200 * scale))
    n_docs = max(10, int(10_000 * scale))
    users = [f"u{i}" for i in range(n_users)]
    groups = [[f"g{lvl}_{i}" for i in range(per_level)] for lvl in range(levels)]
    rels: list[str] = []
    for lvl in range(levels):
        for i, g in enumerate(groups[lvl]):
            for u in rng.sample(users, min(len(users), 10 if lvl == 0 else 5)):
                rels.append(f"group:{g}#member@user:{u}")
            if lvl > 0:
                for j in (i, (i + 1) % per_level):
                    rels.append(f"group:{g}#member@group:{groups[lvl - 1][j]}#member")
    all_groups = [g for lvl in groups for g in lvl]
    for f in range(n_folders):
        if f > 0:
            rels.append(f"folder:f{f}#parent@folder:f{(f - 1) // 3}")
            if rng.random() < 0.5:
                rels.append(f"folder:f{f}#viewer@user:{rng.choice(users)}")
            if rng.random() < 0.3:
                rels.append(f"folder:f{f}#viewer@group:{rng.choice(all_groups)}#member")
    for d in range(n_docs):
        rels.append(f"document:d{d}#folder@folder:f{rng.randrange(n_folders)}")
        rels.append(f"document:d{d}#viewer@user:{rng.choice(users)}")
        rels.append(f"document:d{d}#editor@user:{rng.choice(users)}")
        if rng.random() < 0.1:
            rels.append(f"document:d{d}#viewer@group:{rng.choice(all_groups)}#member")
    # The same relationship may be drawn twice; keep the first.
    rels = list(dict.fromkeys(rels))
    return Workload("docs", DOCS_SCHEMA, rels, users, [f"d{d}" for d in range(n_docs)])
