"""The service: the one facade that every transport (Python API, CLI, gRPC, HTTP) calls.

It opens the store, compiles and caches the schema per revision, resolves each request's
consistency to a snapshot, runs the engine, and returns results that carry the token of the
revision they were computed at. It is the only place that applies those rules, so every
transport behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zanzi.api.results import (
    CheckResult,
    DeleteResult,
    ExpandResult,
    LookupResourceResult,
    LookupSubjectResult,
    RelationshipChange,
    RelationshipStream,
    SchemaResult,
    WatchEvent,
    WriteResult,
)
from zanzi.api.tokens import TokenCodec
from zanzi.engine.caveats import CelCaveats
from zanzi.engine.check import DEFAULT_MAX_DEPTH, CheckMemo
from zanzi.engine.conditions import Cond
from zanzi.engine.core import CheckAnswer, Engine
from zanzi.engine.index import ServingIndex
from zanzi.engine.lookup_subjects import LookupMemo
from zanzi.engine.singleflight import SingleFlight
from zanzi.engine.subjectset import SubjectSet
from zanzi.engine.validation import (
    check_schema_change,
    validate_permission_reference,
    validate_relationship,
    validate_subject_reference,
)
from zanzi.errors import (
    InvalidArgument,
    InvalidContext,
    InvalidFilter,
    PreconditionFailed,
    ReadOnly,
    SchemaNotFound,
    TooManyChecks,
    TooManyToDelete,
    TooManyUpdates,
    UnknownDefinition,
    ZanziError,
)
from zanzi.model import (
    Consistency,
    ConsistencyMode,
    ObjectRef,
    Operation,
    Permissionship,
    Precondition,
    PreconditionKind,
    Relationship,
    RelationshipFilter,
    SubjectRef,
    Update,
)
from zanzi.schema import compile_schema, ir
from zanzi.store.base import ChangeSet, Datastore, Reader, RelationshipQuery, Revision, Writer, sort_key
from zanzi.store.registry import open_datastore

__all__ = ["CheckItem", "Service", "open"]

DEFAULT_MAX_UPDATES = 1000
DEFAULT_MAX_BULK_CHECK = 10_000
DEFAULT_MAX_PRECONDITIONS = 1000
DEFAULT_QUANTUM = 5.0  # seconds a minimize_latency read may lag behind other processes' writes
MAX_CONTEXT_BYTES = 4096  # SpiceDB's default maximum caveat context size

#: How long (seconds) the serving index keeps deleted versions for requests pinned in the past.
_INDEX_HISTORY_SECONDS = 60.0
#: Shared check sub-answers: how many (revision, subject) memos, and entries in one.
_MEMO_SUBJECTS = 4096
_MEMO_ENTRIES = 50_000
#: Shared subject sets of recursive relations: how many (revision, subject kind), and how many
#: subjects one may hold before it starts afresh.
_CLOSURE_KINDS = 16
_CLOSURE_SUBJECTS = 2_000_000

RefLike = str | ObjectRef
SubjectLike = str | SubjectRef | ObjectRef
UpdateLike = str | Relationship | Update


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One question of a bulk check."""

    resource: ObjectRef
    permission: str
    subject: SubjectRef
    context: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, item: CheckItem | tuple[Any, ...] | str) -> CheckItem:
        """Accepts a ``CheckItem``, a tuple ``(resource, permission, subject[, context])`` or a
        string ``"document:1#view@user:alice"``."""
        if isinstance(item, CheckItem):
            return item
        if isinstance(item, str):
            rel = Relationship.parse(item)
            return cls(rel.resource, rel.relation, rel.subject)
        if isinstance(item, tuple) and len(item) in (3, 4):
            context = item[3] if len(item) == 4 else None
            return cls(ObjectRef.parse(item[0]), str(item[1]), SubjectRef.parse(item[2]), context)
        raise InvalidArgument(f"cannot read a check item from {item!r}")


@dataclass(frozen=True, slots=True)
class _View:
    reader: Reader
    token: str
    engine: Engine
    revision: Revision
    #: sub-answers may be shared between requests (served from the index, no expiring data)
    shareable: bool = False


@dataclass(frozen=True, slots=True)
class _Serving:
    index: ServingIndex
    engine: Engine


def _revision_int(revision: Revision) -> int:
    value = getattr(revision, "value", None)
    return value if isinstance(value, int) else int(str(revision))


class Service:
    """Zanzi, embedded: schema, relationships and the Zanzibar APIs over one datastore.

    >>> db = Service.open("memory://")
    >>> token = db.write_schema("definition user {}  definition doc { relation viewer: user }")
    >>> _ = db.write_relationships(["doc:readme#viewer@user:alice"])
    >>> db.check("doc:readme", "viewer", "user:alice").allowed
    True
    """

    def __init__(
        self,
        datastore: Datastore,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_updates: int = DEFAULT_MAX_UPDATES,
        max_bulk_check: int = DEFAULT_MAX_BULK_CHECK,
        read_only: bool = False,
        clock: Callable[[], datetime] | None = None,
        serving_index: bool = True,
        quantum: float = DEFAULT_QUANTUM,
    ) -> None:
        self.datastore = datastore
        self.tokens = TokenCodec(datastore)
        self.max_depth = max_depth
        self.max_updates = max_updates
        self.max_bulk_check = max_bulk_check
        self.read_only = read_only
        self._clock = clock
        self._engines: dict[str, Engine | None] = {}
        self._lock = threading.Lock()
        # The serving index (engine/index.py): answers reads at revisions it holds from memory.
        # ``quantum`` is how stale a minimize_latency read may be, in seconds (SpiceDB's
        # revision quantization, 5 s there too): 0 asks the store for its head on every such
        # read. A service always sees its own writes at once; at_least_as_fresh and
        # fully_consistent are never stale.
        self.quantum = quantum
        self._use_index = serving_index and datastore.capabilities.watch
        self._serving: _Serving | None = None
        self._latest_view: _View | None = None  # see _view
        self._serving_lock = threading.Lock()
        self._history: deque[tuple[float, Revision]] = deque()
        self._tokens_cache: dict[Revision, str] = {}
        self._memos: OrderedDict[tuple[Revision, SubjectRef, int], CheckMemo] = OrderedDict()
        self._closures: OrderedDict[tuple[Revision, int, str, str | None], LookupMemo] = OrderedDict()
        # identical concurrent questions are answered once (Zanzibar's lock table)
        self._check_flights: SingleFlight[CheckAnswer] = SingleFlight()
        self._lookup_flights: SingleFlight[dict[str, Cond]] = SingleFlight()

    @classmethod
    def open(cls, url: str = "sqlite:///zanzi.db", **options: Any) -> Service:
        """Open a datastore by URL (``sqlite:///path.db``, ``memory://``...) and serve it.
        Options are split between the datastore (``gc_window``...) and the service."""
        service_keys = {
            "max_depth",
            "max_updates",
            "max_bulk_check",
            "read_only",
            "clock",
            "serving_index",
            "quantum",
        }
        service_opts = {k: v for k, v in options.items() if k in service_keys}
        # The clock is shared: the store stamps revisions with it, the service expires with it.
        store_opts = {k: v for k, v in options.items() if k not in service_keys or k == "clock"}
        return cls(open_datastore(url, **store_opts), **service_opts)

    def close(self) -> None:
        self.datastore.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time, revisions, schema --------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def head_token(self) -> str:
        """The token of the newest committed revision."""
        return self._token(self.datastore.head_revision())

    def _token(self, revision: Revision) -> str:
        token = self._tokens_cache.get(revision)
        if token is None:
            token = self.tokens.encode(revision)
            if len(self._tokens_cache) > 1024:
                self._tokens_cache.clear()
            self._tokens_cache[revision] = token
        return token

    def _revision_for(self, consistency: Consistency | None) -> Revision:
        c = consistency or Consistency.minimize_latency()
        serving = self._serving
        fresh = (
            serving is not None
            and self.quantum > 0
            and time.monotonic() - serving.index.refreshed < self.quantum
        )
        if c.mode is ConsistencyMode.MINIMIZE_LATENCY:
            if fresh and serving is not None:
                return serving.index.revision
            return self._head(serving)
        if c.mode is ConsistencyMode.FULLY_CONSISTENT:
            return self._head(serving)
        assert c.token is not None
        wanted = self.tokens.decode(c.token)
        if c.mode is ConsistencyMode.AT_EXACT_SNAPSHOT:
            self.datastore.check_revision(wanted)
            return wanted
        if fresh and serving is not None and wanted <= serving.index.revision:
            return serving.index.revision
        head = self._head(serving)
        if wanted > head:
            self.datastore.check_revision(wanted)  # raises RevisionInFuture
        return head

    def _head(self, serving: _Serving | None) -> Revision:
        """The store's head revision; an index already there counts as freshly confirmed."""
        head = self.datastore.head_revision()
        if serving is not None and head == serving.index.revision:
            serving.index.refreshed = time.monotonic()
        return head

    def _view(self, consistency: Consistency | None) -> _View:
        """The reader, token and engine of one request: from the serving index when it holds
        the chosen revision, from a store snapshot otherwise."""
        latest = consistency is None or consistency.mode is ConsistencyMode.MINIMIZE_LATENCY
        if latest:
            # The common case: the index's freshly confirmed revision, with no expiring data
            # (so the clock plays no part). Its view is immutable: every request shares it.
            view, serving = self._latest_view, self._serving
            if (
                view is not None
                and serving is not None
                and view.engine is serving.engine
                and view.revision == serving.index.revision
                and self.quantum > 0
                and time.monotonic() - serving.index.refreshed < self.quantum
                and serving.index.expiring == 0
            ):
                return view
        revision = self._revision_for(consistency)
        now = self.now()
        store_reader = self.datastore.snapshot(revision, now=now)
        serving = self._serving_at(revision) if self._use_index else None
        if serving is not None:
            reader: Reader = serving.index.reader(revision, now, store_reader)
            shareable = serving.index.expiring == 0
            view = _View(reader, self._token(revision), serving.engine, revision, shareable)
            if latest and shareable:
                self._latest_view = view
            return view
        engine = self._engine_for(store_reader.read_schema())
        return _View(store_reader, self._token(revision), engine, revision)

    def _snapshot(self, consistency: Consistency | None) -> tuple[Reader, str]:
        view = self._view(consistency)
        return view.reader, view.token

    # -- the serving index ----------------------------------------------------------------------

    def _serving_at(self, revision: Revision) -> _Serving | None:
        """The serving state holding ``revision`` (catching up or building it), or ``None``
        when the store must answer (an old revision, or no schema yet)."""
        serving = self._serving
        if serving is not None:
            index = serving.index
            if revision <= index.revision:
                return serving if index.floor <= _revision_int(revision) else None
            with self._serving_lock:
                serving = self._serving
                if serving is not None and revision > serving.index.revision:
                    if serving.index.catch_up(revision):
                        serving = self._serving = None  # the schema changed: rebuild below
                    else:
                        self._note_progress(serving)
                if serving is not None:
                    return serving if revision <= serving.index.revision else None
        with self._serving_lock:
            if self._serving is None:
                self._serving = self._build_serving()
            serving = self._serving
        if serving is None or revision > serving.index.revision:
            return None
        return serving if serving.index.floor <= _revision_int(revision) else None

    def _build_serving(self) -> _Serving | None:
        head = self.datastore.head_revision()
        text = self.datastore.snapshot(head).read_schema()
        if text is None:
            return None
        engine = self._engine_for(text)
        index = ServingIndex.build(self.datastore, sorted(engine.schema.definitions))
        if index.catch_up():  # a schema change raced the build
            return None
        return _Serving(index, engine)

    def _note_progress(self, serving: _Serving) -> None:
        """Remember when each revision was reached; let the index drop versions older than a
        minute (requests pinned further back read the store)."""
        now = time.monotonic()
        self._history.append((now, serving.index.revision))
        floor: Revision | None = None
        while self._history and now - self._history[0][0] > _INDEX_HISTORY_SECONDS:
            floor = self._history.popleft()[1]
        if floor is not None:
            serving.index.advance_floor(floor)

    def _memo_for(self, view: _View, subject: SubjectRef) -> CheckMemo | None:
        """The shared sub-answers of ``subject`` at the view's revision (bounded, least
        recently used first out), or ``None`` when answers must not be shared."""
        if not view.shareable:
            return None
        key = (view.revision, subject, id(view.engine))
        memos = self._memos
        memo = memos.get(key)
        if memo is None or len(memo) > _MEMO_ENTRIES:
            memo = CheckMemo()
            with self._lock:
                memos[key] = memo
                while len(memos) > _MEMO_SUBJECTS:
                    memos.popitem(last=False)
        return memo

    def _closures_for(self, view: _View, subject: SubjectRef) -> LookupMemo | None:
        """The shared subject sets of recursive relations for subjects of ``subject``'s kind at
        the view's revision (bounded), or ``None`` when answers must not be shared."""
        if not view.shareable or not view.engine.ts.recursive:
            return None
        key = (view.revision, id(view.engine), subject.type, subject.relation)
        closures = self._closures
        memo = closures.get(key)
        if memo is None or memo.size > _CLOSURE_SUBJECTS:
            memo = LookupMemo()
            with self._lock:
                closures[key] = memo
                while len(closures) > _CLOSURE_KINDS:
                    closures.popitem(last=False)
        return memo

    def _after_write(self, revision: Revision) -> None:
        """Bring the serving index to a revision this service just committed, so its own
        minimize_latency reads see its writes."""
        serving = self._serving
        if serving is not None and revision > serving.index.revision:
            self._serving_at(revision)

    def _engine_for(self, text: str | None) -> Engine:
        if text is None:
            raise SchemaNotFound("no schema has been defined; write one first")
        key = hashlib.sha256(text.encode()).hexdigest()
        engine = self._engines.get(key)
        if engine is None:
            schema = compile_schema(text)
            caveats = CelCaveats(schema) if schema.caveats else None
            engine = Engine(schema, max_depth=self.max_depth, caveats=caveats)
            with self._lock:
                if len(self._engines) > 64:
                    self._engines.clear()
                self._engines[key] = engine
        return engine

    def engine(self, consistency: Consistency | None = None) -> Engine:
        """The engine for the schema at the chosen revision."""
        return self._view(consistency).engine

    def _require_writable(self) -> None:
        if self.read_only:
            raise ReadOnly("the service is in read-only mode")

    # -- schema -------------------------------------------------------------------------------

    def write_schema(self, text: str) -> str:
        """Compile, validate and store a schema; return the token of its revision.

        A change that would orphan stored relationships is refused
        (:class:`~zanzi.errors.SchemaInUse`)."""
        self._require_writable()
        if not isinstance(text, str):
            raise InvalidArgument("the schema must be text")
        schema = compile_schema(text)
        with self.datastore.transaction() as tx:
            tx.hold_commits()  # no relationship may commit between the check and this change
            old_text = tx.read_schema()
            old = compile_schema(old_text) if old_text else None
            check_schema_change(old, schema, lambda q: tx.query(q))
            tx.write_schema(text)
        self._engine_for(text)
        self._after_write(tx.revision)
        return self._token(tx.revision)

    def read_schema(self, consistency: Consistency | None = None) -> SchemaResult:
        """The schema text at the chosen revision; :class:`SchemaNotFound` if there is none."""
        reader, token = self._snapshot(consistency)
        text = reader.read_schema()
        if text is None:
            raise SchemaNotFound("no schema has been defined")
        return SchemaResult(text, token)

    def schema(self, consistency: Consistency | None = None) -> ir.Schema:
        """The compiled schema at the chosen revision."""
        return self.engine(consistency).schema

    def compiled_schema(self, consistency: Consistency | None = None) -> tuple[ir.Schema, str]:
        """The compiled schema at the chosen revision, and that revision's token."""
        view = self._view(consistency)
        return view.engine.schema, view.token

    # -- writes -------------------------------------------------------------------------------

    def write_relationships(
        self,
        updates: Iterable[UpdateLike],
        *,
        preconditions: Iterable[Precondition | str] = (),
        operation: Operation = Operation.TOUCH,
    ) -> str:
        """Apply relationship updates atomically; return the new revision's token.

        Strings and :class:`Relationship` objects are applied with ``operation`` (TOUCH by
        default); :class:`Update` objects carry their own. Preconditions (``Precondition``
        objects, or strings read as must-match filters) are checked inside the same
        transaction.
        """
        return self.write(updates, preconditions=preconditions, operation=operation).token

    def write(
        self,
        updates: Iterable[UpdateLike],
        *,
        preconditions: Iterable[Precondition | str] = (),
        operation: Operation = Operation.TOUCH,
    ) -> WriteResult:
        self._require_writable()
        items = _to_updates(updates, operation)
        if len(items) > self.max_updates:
            raise TooManyUpdates(
                f"update count of {len(items)} is greater than maximum allowed of {self.max_updates}",
                limit=self.max_updates,
            )
        conds = _to_preconditions(preconditions)
        seen: set[tuple[str, str, str, str, str, str | None]] = set()
        for u in items:
            key = u.relationship.key()
            if key in seen:
                raise InvalidArgument(
                    f"found more than one update with relationship `{u.relationship}` in this request; "
                    "a relationship can only be specified in an update once per request",
                    relationship=str(u.relationship),
                    reason="ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP",
                )
            seen.add(key)
        with self.datastore.transaction() as tx:
            engine = self._engine_for(tx.read_schema())
            for u in items:
                self._validate_update(engine, u.relationship, for_delete=u.operation is Operation.DELETE)
            if conds:
                tx.hold_commits()  # the preconditions must still hold when this commits
            for p in conds:
                self._check_precondition(engine, tx, p)
            tx.write(items)
        self._after_write(tx.revision)
        return WriteResult(self._token(tx.revision), len(items))

    def _validate_update(
        self, engine: Engine, rel: Relationship, *, for_delete: bool = False, well_formed: bool = False
    ) -> None:
        """Schema rules, then the caveat context stored with the relationship: within the size
        limit and of the caveat's parameter types."""
        validate_relationship(engine.ts, rel, for_delete=for_delete, well_formed=well_formed)
        if for_delete or rel.caveat is None or not rel.caveat.context:
            return
        _check_context_size(rel.caveat.context, f"caveat context of `{rel}`")
        if engine.caveats is not None and hasattr(engine.caveats, "check_context"):
            engine.caveats.check_context(rel.caveat.name, rel.caveat.context)

    def _check_precondition(self, engine: Engine, tx: Writer, p: Precondition) -> None:
        f = p.filter.validate()
        _validate_filter(engine, f)
        found = tx.exists(RelationshipQuery.from_filter(f))
        if p.kind is PreconditionKind.MUST_MATCH and not found:
            raise PreconditionFailed(
                f"unable to satisfy write precondition `{p}`: no relationship matches", precondition=str(p)
            )
        if p.kind is PreconditionKind.MUST_NOT_MATCH and found:
            raise PreconditionFailed(
                f"unable to satisfy write precondition `{p}`: a relationship matches", precondition=str(p)
            )

    def delete_relationships(
        self,
        filter: RelationshipFilter | str,
        *,
        preconditions: Iterable[Precondition | str] = (),
        limit: int | None = None,
        allow_partial: bool = False,
    ) -> DeleteResult:
        """Delete every relationship matching ``filter``, atomically.

        With ``limit``, more matches than the limit is an error unless ``allow_partial``, in
        which case ``limit`` of them are deleted and the result says ``partial``."""
        self._require_writable()
        f = RelationshipFilter.parse(filter).validate()
        conds = _to_preconditions(preconditions)
        if limit is not None and limit <= 0:
            raise InvalidArgument("the delete limit must be positive")
        partial = False
        with self.datastore.transaction() as tx:
            engine = self._engine_for(tx.read_schema())
            _validate_filter(engine, f)
            if conds:
                tx.hold_commits()  # the preconditions must still hold when this commits
            for p in conds:
                self._check_precondition(engine, tx, p)
            q = RelationshipQuery.from_filter(f)
            if limit is not None:
                matching = sum(1 for _ in tx.query(q, limit=limit + 1))
                if matching > limit:
                    if not allow_partial:
                        raise TooManyToDelete(
                            f"found more than {limit} relationships to be deleted and partial deletion "
                            "was not requested",
                            limit=limit,
                        )
                    partial = True
            deleted = tx.delete(q, limit=limit)
        self._after_write(tx.revision)
        return DeleteResult(self._token(tx.revision), len(deleted), partial)

    def import_relationships(self, relationships: Iterable[str | Relationship]) -> WriteResult:
        """Create many relationships in one transaction, through the datastore's bulk loader
        (PostgreSQL's COPY). All or nothing, as SpiceDB's bulk import: a relationship that
        exists already (or fails the schema) is an error and nothing is imported."""
        self._require_writable()
        with self.datastore.transaction() as tx:
            engine = self._engine_for(tx.read_schema())

            # A parsed string is well-formed already, so only its shape (types, relation,
            # subject relation, wildcard, caveat, expiration) meets the schema: check each shape
            # once. A caveat context is checked every time, and so is a Relationship object.
            shapes: set[tuple[object, ...]] = set()

            def validated() -> Iterator[Relationship]:
                for item in relationships:
                    rel = Relationship.parse(item)
                    s, caveat = rel.subject, rel.caveat
                    shape = (
                        rel.resource.type,
                        rel.relation,
                        s.type,
                        s.relation,
                        s.is_wildcard,
                        caveat.name if caveat is not None else None,
                        rel.expiration is not None,
                    )
                    well_formed = isinstance(item, str)
                    if well_formed and shape in shapes and (caveat is None or not caveat.context):
                        yield rel
                        continue
                    self._validate_update(engine, rel, well_formed=well_formed)
                    if well_formed:
                        shapes.add(shape)
                    yield rel

            count = tx.bulk_create(validated())
        self._after_write(tx.revision)
        return WriteResult(self._token(tx.revision), count)

    # -- reads --------------------------------------------------------------------------------

    def read_relationships(
        self,
        filter: RelationshipFilter | str,
        *,
        consistency: Consistency | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RelationshipStream:
        """Stored relationships matching ``filter``, ordered, at one revision."""
        f = RelationshipFilter.parse(filter).validate()
        view = self._view(consistency)
        reader, token = view.reader, view.token
        _validate_filter(view.engine, f)
        after = _decode_cursor(cursor) if cursor else None
        if limit is not None and limit <= 0:
            raise InvalidArgument("the limit must be positive")
        items = reader.query(RelationshipQuery.from_filter(f), limit=limit, after=after, ordered=True)
        return RelationshipStream(items, token, _encode_cursor)

    def export_relationships(self, consistency: Consistency | None = None) -> RelationshipStream:
        """Every stored relationship at one revision, ordered."""
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine

        def everything() -> Iterator[Relationship]:
            for name in sorted(engine.schema.definitions):
                yield from reader.query(RelationshipQuery(resource_type=name), ordered=True)

        return RelationshipStream(everything(), token, _encode_cursor)

    def check(
        self,
        resource: RefLike,
        permission: str,
        subject: SubjectLike,
        *,
        consistency: Consistency | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> CheckResult:
        """Does ``subject`` have ``permission`` on ``resource``?"""
        res, sub = ObjectRef.parse(resource), SubjectRef.parse(subject)
        _check_context_size(context, "the request's caveat context")
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine

        def compute() -> CheckAnswer:
            return engine.check(
                reader,
                res,
                permission,
                sub,
                context,
                memo=self._memo_for(view, sub),
                closures=self._closures_for(view, sub),
            )

        if view.shareable:
            key = (view.revision, id(engine), res, permission, sub, _context_key(context))
            answer = self._check_flights.do(key, compute)
        else:
            answer = compute()
        perm, missing = _permissionship(answer.decision.allowed, answer.decision.missing)
        return CheckResult(res, permission, sub, perm, token, missing, dispatch_count=answer.stats.dispatches)

    def check_bulk(
        self,
        items: Iterable[CheckItem | tuple[Any, ...] | str],
        *,
        consistency: Consistency | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[CheckResult]:
        """Many checks at one revision. A failing item carries its ``error``; the others are
        answered normally."""
        parsed = [CheckItem.of(i) for i in items]
        _check_context_size(context, "the request's caveat context")
        if len(parsed) > self.max_bulk_check:
            raise TooManyChecks(
                f"check count of {len(parsed)} is greater than maximum allowed of {self.max_bulk_check}",
                limit=self.max_bulk_check,
            )
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine
        results: list[CheckResult] = []
        for item in parsed:
            try:
                answer = engine.check(
                    reader,
                    item.resource,
                    item.permission,
                    item.subject,
                    item.context or context,
                    memo=self._memo_for(view, item.subject),
                    closures=self._closures_for(view, item.subject),
                )
            except ZanziError as exc:
                results.append(
                    CheckResult(
                        item.resource,
                        item.permission,
                        item.subject,
                        Permissionship.NO_PERMISSION,
                        token,
                        (),
                        exc,
                    )
                )
                continue
            perm, missing = _permissionship(answer.decision.allowed, answer.decision.missing)
            results.append(
                CheckResult(
                    item.resource,
                    item.permission,
                    item.subject,
                    perm,
                    token,
                    missing,
                    dispatch_count=answer.stats.dispatches,
                )
            )
        return results

    def expand(
        self,
        resource: RefLike,
        permission: str,
        *,
        consistency: Consistency | None = None,
        recursive: bool = False,
    ) -> ExpandResult:
        """The userset tree of ``resource#permission``."""
        res = ObjectRef.parse(resource)
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine
        return ExpandResult(engine.expand(reader, res, permission, recursive=recursive), token)

    def lookup_resources(
        self,
        resource_type: str,
        permission: str,
        subject: SubjectLike,
        *,
        consistency: Consistency | None = None,
        context: Mapping[str, Any] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[LookupResourceResult]:
        """Resources of ``resource_type`` on which ``subject`` has ``permission``, by id."""
        sub = SubjectRef.parse(subject)
        _check_context_size(context, "the request's caveat context")
        if limit is not None and limit <= 0:
            raise InvalidArgument("the limit must be positive")
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine

        def compute() -> dict[str, Cond]:
            return engine.lookup_resources(reader, resource_type, permission, sub)

        if view.shareable:
            found = self._lookup_flights.do(
                (view.revision, id(engine), resource_type, permission, sub), compute
            )
        else:
            found = compute()
        ids = sorted(found)
        if cursor:
            ids = [i for i in ids if i > cursor]
        return self._resource_results(engine, found, ids, token, context, limit)

    def _resource_results(
        self,
        engine: Engine,
        found: dict[str, Cond],
        ids: list[str],
        token: str,
        context: Mapping[str, Any] | None,
        limit: int | None,
    ) -> Iterator[LookupResourceResult]:
        emitted = 0
        for rid in ids:
            decision = engine.decide(found[rid], context)
            if decision.allowed is False:
                continue
            perm, missing = _permissionship(decision.allowed, decision.missing)
            yield LookupResourceResult(rid, perm, token, missing, cursor=rid)
            emitted += 1
            if limit is not None and emitted >= limit:
                return

    def lookup_subjects(
        self,
        resource: RefLike,
        permission: str,
        subject_type: str,
        *,
        subject_relation: str | None = None,
        consistency: Consistency | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Iterator[LookupSubjectResult]:
        """Subjects of ``subject_type`` (``#subject_relation``) with ``permission`` on
        ``resource``; a wildcard result lists the subjects it excludes."""
        res = ObjectRef.parse(resource)
        _check_context_size(context, "the request's caveat context")
        view = self._view(consistency)
        reader, token, engine = view.reader, view.token, view.engine
        subjects = engine.lookup_subjects(reader, res, permission, subject_type, subject_relation)
        return _subject_results(engine, subjects, subject_type, subject_relation, token, context)

    # -- watch --------------------------------------------------------------------------------

    def watch(
        self,
        after_token: str | None = None,
        *,
        object_types: Sequence[str] = (),
        filters: Sequence[RelationshipFilter | str] = (),
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> Iterator[WatchEvent]:
        """Committed changes after ``after_token`` (default: now), in revision order, one event
        per revision that touched relationships matching the filters. Waits for new changes
        until ``timeout`` seconds pass without any (forever if ``None``)."""
        after = self.tokens.decode(after_token) if after_token else self.datastore.head_revision()
        self.datastore.check_revision(after)
        parsed = [RelationshipFilter.parse(f) for f in filters]
        types = set(object_types)

        def wanted(rel: Relationship) -> bool:
            if types and rel.resource.type not in types:
                return False
            return not parsed or any(f.matches(rel) for f in parsed)

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progressed = False
            for cs in self.datastore.changes(after):
                progressed = True
                after = cs.revision
                event = _watch_event(cs, wanted, self.tokens.encode(cs.revision))
                if event is not None:
                    yield event
                    if timeout is not None:
                        deadline = time.monotonic() + timeout
            if deadline is not None and not progressed and time.monotonic() >= deadline:
                return
            wait = (
                poll_interval
                if deadline is None
                else max(0.0, min(poll_interval, deadline - time.monotonic()))
            )
            self.datastore.wait_for_change(after, wait)


# -- helpers ----------------------------------------------------------------------------------


def open(url: str = "sqlite:///zanzi.db", **options: Any) -> Service:  # noqa: A001 - mirrors zanzi.open
    """Open Zanzi on a datastore URL: ``sqlite:///path.db`` (default ``zanzi.db``) or ``memory://``."""
    return Service.open(url, **options)


def _context_key(context: Mapping[str, Any] | None) -> str:
    return json.dumps(context, sort_keys=True, default=str) if context else ""


def _check_context_size(context: Mapping[str, Any] | None, what: str) -> None:
    if not context:
        return
    if not isinstance(context, Mapping):
        raise InvalidContext(f"{what} must be a JSON object")
    try:
        size = len(json.dumps(context, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidContext(f"{what} is not JSON: {exc}") from None
    if size > MAX_CONTEXT_BYTES:
        raise InvalidContext(
            f"{what} is {size} bytes, more than the maximum of {MAX_CONTEXT_BYTES}",
            limit=MAX_CONTEXT_BYTES,
            reason="ERROR_REASON_MAX_RELATIONSHIP_CONTEXT_SIZE",
        )


def _to_updates(updates: Iterable[UpdateLike], operation: Operation) -> list[Update]:
    if isinstance(updates, str | Relationship | Update):
        updates = [updates]
    out: list[Update] = []
    for u in updates:
        if isinstance(u, Update):
            out.append(u)
        else:
            out.append(Update(operation, Relationship.parse(u)))
    return out


def _to_preconditions(preconditions: Iterable[Precondition | str]) -> list[Precondition]:
    conds = [p if isinstance(p, Precondition) else Precondition.must_match(p) for p in preconditions]
    if len(conds) > DEFAULT_MAX_PRECONDITIONS:
        raise InvalidArgument(
            f"precondition count of {len(conds)} is greater than maximum allowed of "
            f"{DEFAULT_MAX_PRECONDITIONS}",
            limit=DEFAULT_MAX_PRECONDITIONS,
            reason="ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST",
        )
    return conds


def _validate_filter(engine: Engine, f: RelationshipFilter) -> None:
    ts = engine.ts
    if f.resource_type is not None:
        if f.relation is not None:
            validate_permission_reference(ts, f.resource_type, f.relation)
        elif f.resource_type not in ts.definitions:
            raise UnknownDefinition(
                f"object definition `{f.resource_type}` not found", definition=f.resource_type
            )
    if f.subject is not None:
        rel = f.subject.relation if f.subject.relation not in (None, "...") else None
        validate_subject_reference(ts, f.subject.type, rel)


def _encode_cursor(rel: Relationship) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(sort_key(rel))).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str, str, str, str, str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidFilter("the cursor is malformed", reason="ERROR_REASON_INVALID_CURSOR") from None
    if not (isinstance(key, list) and len(key) == 6 and all(isinstance(k, str) for k in key)):
        raise InvalidFilter("the cursor is malformed", reason="ERROR_REASON_INVALID_CURSOR")
    return (key[0], key[1], key[2], key[3], key[4], key[5])


def _permissionship(allowed: bool | None, missing: tuple[str, ...]) -> tuple[Permissionship, tuple[str, ...]]:
    if allowed is True:
        return Permissionship.HAS_PERMISSION, ()
    if allowed is False:
        return Permissionship.NO_PERMISSION, ()
    return Permissionship.CONDITIONAL_PERMISSION, missing


def _subject_results(
    engine: Engine,
    subjects: SubjectSet,
    subject_type: str,
    subject_relation: str | None,
    token: str,
    context: Mapping[str, Any] | None,
) -> Iterator[LookupSubjectResult]:
    if subjects.wildcard is not False:
        decision = engine.decide(subjects.wildcard, context)
        if decision.allowed is not False:
            excluded: list[LookupSubjectResult] = []
            for sid in sorted(subjects.excluded):
                ex = engine.decide(subjects.excluded[sid], context)
                if ex.allowed is False:
                    continue
                perm, missing = _permissionship(ex.allowed, ex.missing)
                excluded.append(LookupSubjectResult(SubjectRef(subject_type, sid), perm, token, missing))
            perm, missing = _permissionship(decision.allowed, decision.missing)
            yield LookupSubjectResult(SubjectRef(subject_type, "*"), perm, token, missing, tuple(excluded))
    for sid in sorted(subjects.concrete):
        decision = engine.decide(subjects.concrete[sid], context)
        if decision.allowed is False:
            continue
        perm, missing = _permissionship(decision.allowed, decision.missing)
        yield LookupSubjectResult(SubjectRef(subject_type, sid, subject_relation), perm, token, missing)


def _watch_event(cs: ChangeSet, wanted: Callable[[Relationship], bool], token: str) -> WatchEvent | None:
    changes = tuple(RelationshipChange(c.kind, c.relationship) for c in cs.changes if wanted(c.relationship))
    if not changes and not cs.schema_changed:
        return None
    return WatchEvent(changes, token, cs.schema_changed)
