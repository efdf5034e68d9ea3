"""The serving index: an in-memory, revision-aware replica of the relationships (DESIGN.md, bet 1).

Built once from a snapshot of the store, then kept current by applying the store's changelog
in revision order. It answers the engine's queries with dictionary lookups instead of store
reads:

- forward: ``(resource type, relation) -> resource id -> (subject type, subject relation) ->
  subject id -> entry``, so "is this subject on this relation?" is one lookup and "the usersets
  on this relation" is one bucket;
- reverse: ``(subject type, subject relation) -> subject id -> (resource type, relation) ->
  resource id -> entry``, for lookup-resources.

It is multi-version: an entry remembers the revision that created it and the one that deleted
it, so a request pinned at revision R sees exactly the store's snapshot at R while the index
applies later revisions, without locks on the read path. Deleted versions are dropped once no
request may still read them (revisions below :attr:`ServingIndex.floor` go to the store).
Expired relationships are filtered at read time, against the request's clock.

Readers take ``list()`` copies of the buckets they iterate (atomic under the GIL), so a writer
adding entries concurrently never breaks an iteration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from zanzi.model import ELLIPSIS, Relationship
from zanzi.store.base import (
    ChangeKind,
    ChangeSet,
    Datastore,
    Reader,
    RelationshipKey,
    RelationshipQuery,
    Revision,
    sort_key,
)

__all__ = ["IndexReader", "ServingIndex"]

_FOREVER = 1 << 62
_BUILD_PAGE = 50_000  # relationships per store query while building


class _Entry:
    """One version of a relationship: visible at revisions ``created <= r < deleted``."""

    __slots__ = ("created", "deleted", "older", "rel")

    def __init__(self, rel: Relationship, created: int, older: _Entry | None) -> None:
        self.rel = rel
        self.created = created
        self.deleted = _FOREVER
        self.older = older  # the previous version of the same key, if kept


def _visible(entry: _Entry | None, revision: int) -> _Entry | None:
    while entry is not None:
        if entry.created <= revision < entry.deleted:
            return entry
        entry = entry.older
    return None


# subject id -> newest version
_Subjects = dict[str, _Entry]
# (subject type, subject relation) -> subjects
_ByShape = dict[tuple[str, str], _Subjects]
# resource id -> shapes
_ByResource = dict[str, _ByShape]
# resource id -> newest version (reverse side)
_Resources = dict[str, _Entry]
_ByTarget = dict[tuple[str, str], _Resources]


class ServingIndex:
    """Relationships in memory at every revision from :attr:`floor` to :attr:`revision`."""

    def __init__(
        self, datastore: Datastore, revision: Revision, relationships: Iterable[Relationship]
    ) -> None:
        self.datastore = datastore
        self._revision = revision
        self._rev_int = _as_int(revision)
        self.floor = self._rev_int
        self._fwd: dict[tuple[str, str], _ByResource] = {}
        self._rev: dict[tuple[str, str], dict[str, _ByTarget]] = {}
        self._lock = threading.Lock()
        self._retired: list[tuple[int, _Entry]] = []  # (deleted at, entry) awaiting removal
        self.size = 0
        #: relationships with an expiration ever indexed: answers then depend on the clock
        self.expiring = 0
        self.refreshed = time.monotonic()
        for rel in relationships:
            self._insert(rel, 0)

    @classmethod
    def build(cls, datastore: Datastore, types: Iterable[str]) -> ServingIndex:
        """Load every relationship of the given resource types at the head revision."""
        revision = datastore.head_revision()
        reader = datastore.snapshot(revision)

        def everything() -> Iterator[Relationship]:
            # In ordered pages: a store materialises each query's result, so one query per
            # type would hold millions of rows at once beside the index being built.
            for t in types:
                q = RelationshipQuery(resource_type=t)
                after = None
                while True:
                    page = list(reader.query(q, limit=_BUILD_PAGE, after=after, ordered=True))
                    yield from page
                    if len(page) < _BUILD_PAGE:
                        break
                    after = sort_key(page[-1])

        return cls(datastore, revision, everything())

    @property
    def revision(self) -> Revision:
        return self._revision

    # -- keeping current ------------------------------------------------------------------------

    def catch_up(self, target: Revision | None = None) -> bool:
        """Apply the changelog up to the head (or at least to ``target``). Returns whether the
        schema changed on the way (the caller then rebuilds)."""
        with self._lock:
            if target is not None and target <= self._revision:
                return False
            schema_changed = False
            for cs in self.datastore.changes(self._revision):
                schema_changed |= self._apply(cs)
                if schema_changed:
                    break
            self.refreshed = time.monotonic()
            return schema_changed

    def _apply(self, cs: ChangeSet) -> bool:
        r = _as_int(cs.revision)
        for change in cs.changes:
            rel = change.relationship
            self._delete(rel, r)
            if change.kind is ChangeKind.TOUCH:
                self._insert(rel, r)
        self._revision = cs.revision
        self._rev_int = r
        return cs.schema_changed

    def _insert(self, rel: Relationship, created: int) -> None:
        r, s = rel.resource, rel.subject
        srel = s.relation or ELLIPSIS
        by_resource = self._fwd.setdefault((r.type, rel.relation), {})
        subjects = by_resource.setdefault(r.id, {}).setdefault((s.type, srel), {})
        entry = _Entry(rel, created, subjects.get(s.id))
        subjects[s.id] = entry
        by_target = self._rev.setdefault((s.type, srel), {}).setdefault(s.id, {})
        by_target.setdefault((r.type, rel.relation), {})[r.id] = entry
        self.size += 1
        if rel.expiration is not None:
            self.expiring += 1

    def _delete(self, rel: Relationship, deleted: int) -> None:
        r, s = rel.resource, rel.subject
        subjects = (
            self._fwd.get((r.type, rel.relation), {}).get(r.id, {}).get((s.type, s.relation or ELLIPSIS))
        )
        if not subjects:
            return
        entry = subjects.get(s.id)
        if entry is not None and entry.deleted == _FOREVER:
            entry.deleted = deleted
            self._retired.append((deleted, entry))
            self.size -= 1

    def advance_floor(self, floor: Revision) -> None:
        """Allow dropping versions no request at ``floor`` or later can see."""
        with self._lock:
            value = min(_as_int(floor), self._rev_int)
            if value <= self.floor:
                return
            self.floor = value
            keep: list[tuple[int, _Entry]] = []
            for deleted, entry in self._retired:
                if deleted <= value:
                    self._unlink(entry)
                else:
                    keep.append((deleted, entry))
            self._retired = keep

    def _unlink(self, entry: _Entry) -> None:
        rel = entry.rel
        r, s = rel.resource, rel.subject
        srel = s.relation or ELLIPSIS
        by_resource = self._fwd.get((r.type, rel.relation), {})
        shapes = by_resource.get(r.id, {})
        subjects = shapes.get((s.type, srel), {})
        head = subjects.get(s.id)
        if head is entry:
            if entry.older is None:
                subjects.pop(s.id, None)
                targets = self._rev.get((s.type, srel), {}).get(s.id, {}).get((r.type, rel.relation), {})
                targets.pop(r.id, None)
            else:
                subjects[s.id] = entry.older
                self._rev[(s.type, srel)][s.id][(r.type, rel.relation)][r.id] = entry.older
            return
        while head is not None and head.older is not entry:
            head = head.older
        if head is not None:
            head.older = entry.older

    # -- reading --------------------------------------------------------------------------------

    def reader(self, revision: Revision, now: datetime, fallback: Reader) -> IndexReader:
        return IndexReader(self, _as_int(revision), now, fallback, revision)


def _as_int(revision: Revision) -> int:
    value = getattr(revision, "value", None)
    if isinstance(value, int):
        return value
    return int(str(revision))


class IndexReader(Reader):
    """The engine's reads at one revision, from the index; anything the index does not
    organise for (prefixes, cursors, ordered pages) goes to the store snapshot."""

    def __init__(
        self, index: ServingIndex, revision: int, now: datetime, fallback: Reader, revision_obj: Revision
    ) -> None:
        self._index = index
        self._r = revision
        self._now = now
        self._fallback = fallback
        self.revision = revision_obj

    def read_schema(self) -> str | None:
        return self._fallback.read_schema()

    def shapes(self, resource_type: str, resource_id: str, relation: str) -> _ByShape | None:
        """The engine's fast path: ``(subject type, subject relation) -> subject id -> entry``
        for one resource and relation (``None`` if it has none). Pass entries to :meth:`live`."""
        by_resource = self._index._fwd.get((resource_type, relation))
        return by_resource.get(resource_id) if by_resource else None

    def live(self, entry: _Entry | None) -> Relationship | None:
        """The version of ``entry`` visible to this reader, unless deleted or expired."""
        return self._live(entry)

    def _live(self, entry: _Entry | None) -> Relationship | None:
        e = _visible(entry, self._r)
        if e is None:
            return None
        exp = e.rel.expiration
        if exp is not None and exp <= self._now:
            return None
        return e.rel

    def query(
        self,
        q: RelationshipQuery,
        *,
        limit: int | None = None,
        after: RelationshipKey | None = None,
        ordered: bool = False,
    ) -> Iterator[Relationship]:
        if limit is not None or after is not None or ordered or q.resource_id_prefix is not None:
            return self._fallback.query(q, limit=limit, after=after, ordered=ordered)
        if q.resource_type is not None and q.relation is not None and q.resource_ids is not None:
            return iter(self._forward(q))
        if q.subject_type is not None and q.subject_ids is not None:
            return iter(self._reverse(q))
        return self._fallback.query(q)

    def _forward(self, q: RelationshipQuery) -> list[Relationship]:
        assert q.resource_type is not None and q.relation is not None and q.resource_ids is not None
        by_resource = self._index._fwd.get((q.resource_type, q.relation))
        out: list[Relationship] = []
        if not by_resource:
            return out
        stype, srel, sids = q.subject_type, q.subject_relation, q.subject_ids
        for rid in q.resource_ids:
            shapes = by_resource.get(rid)
            if not shapes:
                continue
            for (shape_type, shape_rel), subjects in list(shapes.items()):
                if (stype is not None and shape_type != stype) or (srel is not None and shape_rel != srel):
                    continue
                if sids is not None:
                    for sid in sids:
                        rel = self._live(subjects.get(sid))
                        if rel is not None:
                            out.append(rel)
                else:
                    for entry in list(subjects.values()):
                        rel = self._live(entry)
                        if rel is not None:
                            out.append(rel)
        return out

    def _reverse(self, q: RelationshipQuery) -> list[Relationship]:
        assert q.subject_type is not None and q.subject_ids is not None
        out: list[Relationship] = []
        srel = q.subject_relation
        rtype, relation, rids = q.resource_type, q.relation, q.resource_ids
        if srel is not None:
            shapes = [((q.subject_type, srel), self._index._rev.get((q.subject_type, srel)))]
        else:
            shapes = [(k, v) for k, v in list(self._index._rev.items()) if k[0] == q.subject_type]
        for _shape, by_sid in shapes:
            if not by_sid:
                continue
            for sid in q.subject_ids:
                targets = by_sid.get(sid)
                if not targets:
                    continue
                for (t, rel_name), resources in list(targets.items()):
                    if (rtype is not None and t != rtype) or (relation is not None and rel_name != relation):
                        continue
                    if rids is not None:
                        for rid in rids:
                            rel = self._live(resources.get(rid))
                            if rel is not None:
                                out.append(rel)
                    else:
                        for entry in list(resources.values()):
                            rel = self._live(entry)
                            if rel is not None:
                                out.append(rel)
        return out
