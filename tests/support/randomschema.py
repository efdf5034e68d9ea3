"""Seeded random schemas and relationships for differential and consistency tests.

Each case has users, nested (possibly cyclic) groups, and a few resource types whose relations
allow users, wildcards, group usersets and other resource types (for arrows), and whose
permissions combine unions, intersections, exclusions, arrows (``->`` and ``.all()``) and
``nil``. Every schema is valid for SpiceDB too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

USER_IDS = [f"u{i}" for i in range(6)]


@dataclass
class Case:
    seed: int
    schema: str
    cycles: bool
    relationships: list[str]
    # (type, [ids]) for resources worth asking about
    resources: dict[str, list[str]] = field(default_factory=dict)
    # type -> names of relations and permissions
    names: dict[str, list[str]] = field(default_factory=dict)
    # (type, relation) usersets usable as subjects
    usersets: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Rel:
    name: str
    allowed: list[str]  # "user", "user:*", "group#member", "res0"


CAVEAT = """caveat level_ok(level int, required int) {
    level >= required
}
"""


def generate(
    seed: int, *, n_types: int = 3, n_rels: int = 60, cycles: bool = True, caveats: bool = False
) -> Case:
    """A random case. With ``cycles=False`` nested groups and parent chains only point "forward"
    (g0 -> g1 -> ...), so the data has no cycles. With ``caveats=True`` users may be related
    through the caveat ``level_ok`` (on group members and viewers), with or without a stored
    ``required`` level."""
    rnd = random.Random(seed)
    types = [f"res{i}" for i in range(n_types)]
    defs: dict[str, list[_Rel]] = {}
    perms: dict[str, list[tuple[str, str]]] = {}
    # SpiceDB refuses a wildcard reached through a relation used as a userset, so the group's
    # wildcard lives on its own relation and only the `membership` permission includes it.
    group_member_wild = rnd.random() < 0.3
    lines = [
        "definition user {}",
        "",
        *([CAVEAT] if caveats else []),
        "definition group {",
        "    relation member: user | group#member" + (" | user with level_ok" if caveats else ""),
        "    relation manager: user",
        "    relation everyone: user:*",
        "    permission membership = member + manager" + (" + everyone" if group_member_wild else ""),
        "}",
        "",
    ]
    # Arrow targets only point to earlier types (or the same type) so every arrow resolves.
    for ti, t in enumerate(types):
        rels = [
            _Rel("owner", ["user"]),
            _Rel(
                "viewer",
                rnd.sample(["user", "user:*", "group#member", "group#membership"], k=rnd.randint(1, 3)),
            ),
            _Rel("blocked", rnd.sample(["user", "group#member"], k=rnd.randint(1, 2))),
        ]
        if "user" not in rels[1].allowed:
            rels[1].allowed.append("user")
        if caveats:
            rels[1].allowed.append("user with level_ok")
            rels[2].allowed.append("user with level_ok")
        parent_type = types[rnd.randint(0, ti)]
        rels.append(_Rel("parent", [parent_type]))
        defs[t] = rels
    for t in types:
        rel_names = [r.name for r in defs[t]]
        parent_type = defs[t][3].allowed[0]
        plist: list[tuple[str, str]] = []
        n_perms = rnd.randint(2, 4)
        for pi in range(n_perms):
            name = f"perm{pi}"
            refs = rel_names[:3] + [p for p, _ in plist]
            # Arrow candidates: parent->permX where permX exists on the parent type. The parent
            # type's permissions are generated first unless it is this type (then use earlier ones).
            if parent_type == t:
                arrow_targets = [p for p, _ in plist] + ["owner", "viewer"]
            else:
                arrow_targets = [p for p, _ in perms[parent_type]] + ["owner", "viewer"]
            expr = _expr(rnd, refs, arrow_targets, depth=0)
            plist.append((name, expr))
        perms[t] = plist
        lines.append(f"definition {t} {{")
        for r in defs[t]:
            lines.append(f"    relation {r.name}: {' | '.join(r.allowed)}")
        for p, e in plist:
            lines.append(f"    permission {p} = {e}")
        lines.append("}")
        lines.append("")
    schema = "\n".join(lines)

    # -- relationships ------------------------------------------------------------------------
    group_ids = [f"g{i}" for i in range(4)]
    res_ids = {t: [f"{t[-1]}{chr(97 + i)}" for i in range(4)] for t in types}
    rels_out = _RelSet()
    for _ in range(n_rels):
        kind = rnd.random()
        if kind < 0.25:
            g = rnd.choice(group_ids)
            roll = rnd.random()
            if roll < 0.5:
                rels_out.add(f"group:{g}#member@user:{rnd.choice(USER_IDS)}{_caveat(rnd, caveats)}")
            elif roll < 0.8:
                other = rnd.choice(group_ids)
                acyclic_ok = group_ids.index(other) > group_ids.index(g)
                if (cycles and (other != g or rnd.random() < 0.2)) or acyclic_ok:
                    rels_out.add(f"group:{g}#member@group:{other}#member")
            elif roll < 0.9:
                rels_out.add(f"group:{g}#everyone@user:*")
            else:
                rels_out.add(f"group:{g}#manager@user:{rnd.choice(USER_IDS)}")
            continue
        t = rnd.choice(types)
        rid = rnd.choice(res_ids[t])
        r = rnd.choice(defs[t])
        allowed = rnd.choice(r.allowed)
        if allowed == "user":
            subject = f"user:{rnd.choice(USER_IDS)}"
        elif allowed == "user with level_ok":
            subject = f"user:{rnd.choice(USER_IDS)}{_caveat(rnd, True, always=True)}"
        elif allowed == "user:*":
            subject = "user:*"
        elif allowed.startswith("group#"):
            subject = f"group:{rnd.choice(group_ids)}#{allowed.split('#')[1]}"
        else:
            target = rnd.choice(res_ids[allowed])
            if not cycles and allowed == t and res_ids[t].index(target) <= res_ids[t].index(rid):
                continue
            subject = f"{allowed}:{target}"
        rels_out.add(f"{t}:{rid}#{r.name}@{subject}")
    names = {t: [r.name for r in defs[t]] + [p for p, _ in perms[t]] for t in types}
    names["group"] = ["member", "manager", "everyone", "membership"]
    resources: dict[str, list[str]] = {t: res_ids[t] for t in types}
    resources["group"] = group_ids
    return Case(
        seed=seed,
        cycles=cycles,
        schema=schema,
        relationships=sorted(rels_out.values()),
        resources=resources,
        names=names,
        usersets=[("group", "member"), ("group", "membership")],
    )


class _RelSet(dict[str, str]):
    """Relationships by key (without caveat), so a relationship appears once."""

    def add(self, text: str) -> None:
        self[text.split("[", 1)[0]] = text


def _caveat(rnd: random.Random, enabled: bool, *, always: bool = False) -> str:
    if not enabled or (not always and rnd.random() < 0.5):
        return ""
    if rnd.random() < 0.5:
        return "[level_ok]"
    return f'[level_ok:{{"required":{rnd.randint(1, 5)}}}]'


def _expr(rnd: random.Random, refs: list[str], arrows: list[str], depth: int) -> str:
    roll = rnd.random()
    if depth >= 2 or roll < 0.35:
        leaf = rnd.random()
        if leaf < 0.2 and arrows:
            target = rnd.choice(arrows)
            return f"parent.all({target})" if rnd.random() < 0.25 else f"parent->{target}"
        if leaf < 0.23:
            return "nil"
        return rnd.choice(refs)
    op = rnd.choice([" + ", " + ", " & ", " - "])
    n = 2 if op == " - " else rnd.randint(2, 3)
    parts = [_expr(rnd, refs, arrows, depth + 1) for _ in range(n)]
    return "(" + op.join(parts) + ")"
