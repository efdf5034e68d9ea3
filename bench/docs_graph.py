"""The "docs" shape as a compact graph: generated from a seed, streamed as relationship strings,
and answered by a small reference evaluator (checks, LookupResources and LookupSubjects counts).

At ``scale=1`` the data is exactly ``../shared/peers/spicedb_smoke.py``'s (same random draws in
the same order): 1,000 users, 100 groups in 5 levels (each level-L group holds 5 users and two
level L-1 groups), 200 folders in a ternary tree, 10,000 documents, 32,084 relationships. A
larger ``scale`` multiplies users, groups per level, folders and documents.

The reference evaluator knows this shape only; it picks lookup subjects by their result counts
and double-checks answers where the SpiceDB engine cannot run (10M relationships).
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

LEVELS = 5

SCHEMA = """
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

CAVEATED_SCHEMA = """
caveat min_level(level int, required int) {
    level >= required
}

caveat ip_allowed(user_ip ipaddress, cidr string) {
    user_ip.in_cidr(cidr)
}

definition user {}

definition group {
    relation member: user | user with ip_allowed | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | user with min_level | group#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation viewer: user | user with min_level | group#member | group#member with min_level
    relation editor: user
    permission edit = editor
    permission view = viewer + edit + folder->view
}
"""

CIDRS = ("10.0.0.0/8", "192.168.0.0/16")


@dataclass
class DocsGraph:
    """Who is where; ids are list indexes (user ``u7`` is 7, group ``g2_5`` is 2 * per_level + 5)."""

    n_users: int
    per_level: int
    n_folders: int
    n_docs: int
    group_users: list[list[int]] = field(default_factory=list)
    group_children: list[list[int]] = field(default_factory=list)  # nested groups (their members)
    folder_user: array[int] = field(default_factory=lambda: array("i"))  # -1: none
    folder_group: array[int] = field(default_factory=lambda: array("i"))
    doc_folder: array[int] = field(default_factory=lambda: array("i"))
    doc_viewer: array[int] = field(default_factory=lambda: array("i"))
    doc_editor: array[int] = field(default_factory=lambda: array("i"))
    doc_group: dict[int, int] = field(default_factory=dict)
    _user_groups: dict[int, list[int]] | None = None
    _parents: list[list[int]] | None = None
    _subtree_docs: array[int] | None = None
    _direct_docs: dict[int, list[int]] | None = None
    _group_docs: dict[int, list[int]] | None = None
    _folders_of: dict[tuple[str, int], list[int]] | None = None

    # -- generation (the draws of spicedb_smoke.py, in its order) -----------------------------

    @classmethod
    def generate(cls, seed: int, scale: float = 1.0) -> DocsGraph:
        rng = random.Random(seed)
        g = cls(
            n_users=max(10, int(1000 * scale)),
            per_level=max(2, int(20 * scale)),
            n_folders=max(4, int(200 * scale)),
            n_docs=max(10, int(10_000 * scale)),
        )
        users = list(range(g.n_users))
        for lvl in range(LEVELS):
            for i in range(g.per_level):
                g.group_users.append(rng.sample(users, min(g.n_users, 10 if lvl == 0 else 5)))
                below = (lvl - 1) * g.per_level
                g.group_children.append([below + i, below + (i + 1) % g.per_level] if lvl else [])
        n_groups = LEVELS * g.per_level
        g.folder_user.append(-1)
        g.folder_group.append(-1)
        for _ in range(1, g.n_folders):
            g.folder_user.append(rng.randrange(g.n_users) if rng.random() < 0.5 else -1)
            g.folder_group.append(rng.randrange(n_groups) if rng.random() < 0.3 else -1)
        for d in range(g.n_docs):
            g.doc_folder.append(rng.randrange(g.n_folders))
            g.doc_viewer.append(rng.randrange(g.n_users))
            g.doc_editor.append(rng.randrange(g.n_users))
            if rng.random() < 0.1:
                g.doc_group[d] = rng.randrange(n_groups)
        return g

    def group_name(self, gid: int) -> str:
        return f"g{gid // self.per_level}_{gid % self.per_level}"

    def count(self) -> int:
        """How many relationships :meth:`relationships` yields."""
        members = sum(len(u) for u in self.group_users) + sum(len(c) for c in self.group_children)
        folders = (self.n_folders - 1) + sum(1 for u in self.folder_user if u >= 0)
        folders += sum(1 for x in self.folder_group if x >= 0)
        return members + folders + 3 * self.n_docs + len(self.doc_group)

    def relationships(self, caveat_fraction: float = 0.0, seed: int = 0) -> Iterator[str]:
        """Every relationship, once. With ``caveat_fraction``, that share of all relationships
        carries a caveat (``min_level`` on viewers, ``ip_allowed`` on group members), drawn
        from a separate generator so the graph itself is unchanged."""
        crng = random.Random(seed + 7919)
        caveatable = sum(len(u) for u in self.group_users) + self.n_docs + len(self.doc_group)
        caveatable += sum(1 for u in self.folder_user if u >= 0)
        p = min(1.0, caveat_fraction * self.count() / caveatable) if caveat_fraction else 0.0

        def level() -> str:
            return f'[min_level:{{"required":{crng.randint(1, 5)}}}]' if crng.random() < p else ""

        def ip() -> str:
            return f'[ip_allowed:{{"cidr":"{crng.choice(CIDRS)}"}}]' if crng.random() < p else ""

        for gid, members in enumerate(self.group_users):
            name = self.group_name(gid)
            for u in members:
                yield f"group:{name}#member@user:u{u}{ip()}"
            for child in self.group_children[gid]:
                yield f"group:{name}#member@group:{self.group_name(child)}#member"
        for f in range(1, self.n_folders):
            yield f"folder:f{f}#parent@folder:f{(f - 1) // 3}"
            if self.folder_user[f] >= 0:
                yield f"folder:f{f}#viewer@user:u{self.folder_user[f]}{level()}"
            if self.folder_group[f] >= 0:
                yield f"folder:f{f}#viewer@group:{self.group_name(self.folder_group[f])}#member"
        for d in range(self.n_docs):
            yield f"document:d{d}#folder@folder:f{self.doc_folder[d]}"
            yield f"document:d{d}#viewer@user:u{self.doc_viewer[d]}{level()}"
            yield f"document:d{d}#editor@user:u{self.doc_editor[d]}"
            if d in self.doc_group:
                yield f"document:d{d}#viewer@group:{self.group_name(self.doc_group[d])}#member{level()}"

    # -- the reference evaluator (no caveats) -------------------------------------------------

    def _index(self) -> None:
        if self._user_groups is not None:
            return
        self._user_groups = {}
        for gid, members in enumerate(self.group_users):
            for u in members:
                self._user_groups.setdefault(u, []).append(gid)
        self._parents = [[] for _ in self.group_users]
        for gid, children in enumerate(self.group_children):
            for c in children:
                self._parents[c].append(gid)
        per_folder = array("i", bytes(4 * self.n_folders))
        for f in self.doc_folder:
            per_folder[f] += 1
        for f in range(self.n_folders - 1, 0, -1):  # a parent's index is below its children's
            per_folder[(f - 1) // 3] += per_folder[f]
        self._subtree_docs = per_folder
        self._group_docs = {}
        for d, gid in self.doc_group.items():
            self._group_docs.setdefault(gid, []).append(d)
        self._folders_of = {}
        for f in range(1, self.n_folders):
            if self.folder_user[f] >= 0:
                self._folders_of.setdefault(("user", self.folder_user[f]), []).append(f)
            if self.folder_group[f] >= 0:
                self._folders_of.setdefault(("group", self.folder_group[f]), []).append(f)
        self._direct_docs = {}
        for d in range(self.n_docs):
            self._direct_docs.setdefault(self.doc_viewer[d], []).append(d)
            if self.doc_editor[d] != self.doc_viewer[d]:
                self._direct_docs.setdefault(self.doc_editor[d], []).append(d)

    def groups_of(self, user: int) -> set[int]:
        """Every group whose members include ``user``, through nesting."""
        self._index()
        assert self._user_groups is not None and self._parents is not None
        seen: set[int] = set()
        todo = list(self._user_groups.get(user, ()))
        while todo:
            gid = todo.pop()
            if gid not in seen:
                seen.add(gid)
                todo.extend(self._parents[gid])
        return seen

    def members_of(self, gid: int) -> set[int]:
        out: set[int] = set()
        todo, seen = [gid], set()
        while todo:
            g = todo.pop()
            if g not in seen:
                seen.add(g)
                out.update(self.group_users[g])
                todo.extend(self.group_children[g])
        return out

    def ancestors(self, folder: int) -> Iterator[int]:
        """The folder and every folder above it."""
        while True:
            yield folder
            if folder == 0:
                return
            folder = (folder - 1) // 3

    def _folder_viewable(self, folder: int, user: int, groups: set[int]) -> bool:
        return any(
            self.folder_user[f] == user or self.folder_group[f] in groups for f in self.ancestors(folder)
        )

    def can_view(self, doc: int, user: int) -> bool:
        groups = self.groups_of(user)
        if user in (self.doc_viewer[doc], self.doc_editor[doc]) or self.doc_group.get(doc, -1) in groups:
            return True
        return self._folder_viewable(self.doc_folder[doc], user, groups)

    def viewable_count(self, user: int) -> int:
        """How many documents ``user`` can view (LookupResources' result count)."""
        self._index()
        assert self._subtree_docs is not None and self._direct_docs is not None
        assert self._group_docs is not None and self._folders_of is not None
        groups = self.groups_of(user)
        viewed = set(self._folders_of.get(("user", user), ()))
        extra = set(self._direct_docs.get(user, ()))
        for gid in groups:
            viewed.update(self._folders_of.get(("group", gid), ()))
            extra.update(self._group_docs.get(gid, ()))
        tops = [f for f in viewed if not any(a in viewed for a in self.ancestors(f) if a != f)]
        total = sum(self._subtree_docs[f] for f in tops)
        covered = set(tops)
        total += sum(1 for d in extra if not any(a in covered for a in self.ancestors(self.doc_folder[d])))
        return total

    def viewers_count(self, doc: int) -> int:
        """How many users can view ``doc`` (LookupSubjects' result count)."""
        users = {self.doc_viewer[doc], self.doc_editor[doc]}
        if doc in self.doc_group:
            users |= self.members_of(self.doc_group[doc])
        for f in self.ancestors(self.doc_folder[doc]):
            if self.folder_user[f] >= 0:
                users.add(self.folder_user[f])
            if self.folder_group[f] >= 0:
                users |= self.members_of(self.folder_group[f])
        return len(users)

    def some_member(self, gid: int, rng: random.Random) -> int:
        """A user of ``gid``, reached through a random number of nesting steps."""
        while self.group_children[gid] and rng.random() < 0.7:
            gid = rng.choice(self.group_children[gid])
        return rng.choice(self.group_users[gid])
