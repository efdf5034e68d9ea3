"""The engine facade: one compiled schema, the four Zanzibar questions, over any reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zanzi.engine.check import DEFAULT_MAX_DEPTH, CheckMemo, CheckRun, CheckStats
from zanzi.engine.conditions import CaveatEvaluator, Cond, Decision, decide
from zanzi.engine.expand import ExpandRun
from zanzi.engine.lookup_resources import LookupResourcesRun
from zanzi.engine.lookup_subjects import LookupMemo, LookupSubjectsRun
from zanzi.engine.reader import RelationshipReader
from zanzi.engine.subjectset import SubjectSet
from zanzi.engine.typesystem import TypeSystem
from zanzi.engine.validation import validate_permission_reference, validate_subject_reference
from zanzi.errors import InvalidArgument, MaxDepthExceeded
from zanzi.model import ExpandTree, ObjectRef, SubjectRef
from zanzi.schema import ir

__all__ = ["CheckAnswer", "Engine"]


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """A check's condition, its decision against the request context, and its cost."""

    condition: Cond
    decision: Decision
    stats: CheckStats


class Engine:
    """Answers check, expand, lookup-resources and lookup-subjects for one schema.

    The engine holds no data: every call takes the snapshot reader to read from. It is safe to
    share between threads.
    """

    def __init__(
        self,
        schema: ir.Schema,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        caveats: CaveatEvaluator | None = None,
    ) -> None:
        self.schema = schema
        self.ts = TypeSystem(schema)
        self.max_depth = max_depth
        self.caveats = caveats

    def decide(self, cond: Cond, context: Mapping[str, Any] | None) -> Decision:
        return decide(cond, self.caveats, context)

    def check(
        self,
        reader: RelationshipReader,
        resource: ObjectRef,
        permission: str,
        subject: SubjectRef,
        context: Mapping[str, Any] | None = None,
        *,
        memo: CheckMemo | None = None,
        closures: LookupMemo | None = None,
    ) -> CheckAnswer:
        """``memo`` shares sub-answers with other checks of the same subject at the same
        revision (see :class:`~zanzi.engine.check.CheckMemo`); ``closures`` shares the subject
        sets of recursive relations (nested groups, chains) with every check of subjects of
        the same type at the same revision."""
        validate_permission_reference(self.ts, resource.type, permission)
        validate_subject_reference(self.ts, subject.type, subject.relation)
        closure_fn = None
        if closures is not None and self.ts.recursive:
            closure_fn = self._closure_fn(reader, subject, closures)
        run = CheckRun(self.ts, reader, subject, max_depth=self.max_depth, memo=memo, closures=closure_fn)
        cond = run.check(resource.type, resource.id, permission)
        return CheckAnswer(cond, self.decide(cond, context), run.stats)

    def _closure_fn(
        self, reader: RelationshipReader, subject: SubjectRef, memo: LookupMemo
    ) -> Callable[[str, str, str, int], SubjectSet | None]:
        def closure(t: str, i: str, r: str, depth: int) -> SubjectSet | None:
            # The subject set must fit in the depth the check has left.
            run = LookupSubjectsRun(
                self.ts,
                reader,
                subject.type,
                subject.relation,
                max_depth=self.max_depth - depth + 1,
                memo=memo,
            )
            try:
                found = run.lookup(t, i, r)
            except MaxDepthExceeded:
                return None  # the check walks on, and reports the depth itself
            return None if (t, i, r) in memo.cyclic else found

        return closure

    def expand(
        self, reader: RelationshipReader, resource: ObjectRef, permission: str, *, recursive: bool = False
    ) -> ExpandTree:
        validate_permission_reference(self.ts, resource.type, permission)
        return ExpandRun(self.ts, reader, recursive=recursive, max_depth=self.max_depth).expand(
            resource.type, resource.id, permission
        )

    def lookup_resources(
        self, reader: RelationshipReader, resource_type: str, permission: str, subject: SubjectRef
    ) -> dict[str, Cond]:
        """Resource id -> condition, for every resource of the type the subject can reach."""
        validate_permission_reference(self.ts, resource_type, permission)
        validate_subject_reference(self.ts, subject.type, subject.relation)
        if subject.is_wildcard:
            raise InvalidArgument(
                "cannot look up resources for a wildcard subject", field="subject.object_id"
            )
        run = LookupResourcesRun(self.ts, reader, subject, max_depth=self.max_depth)
        return run.lookup(resource_type, permission)

    def lookup_subjects(
        self,
        reader: RelationshipReader,
        resource: ObjectRef,
        permission: str,
        subject_type: str,
        subject_relation: str | None = None,
    ) -> SubjectSet:
        """The subjects of ``subject_type`` (``#subject_relation``) with the permission."""
        validate_permission_reference(self.ts, resource.type, permission)
        validate_subject_reference(self.ts, subject_type, subject_relation)
        run = LookupSubjectsRun(self.ts, reader, subject_type, subject_relation, max_depth=self.max_depth)
        return run.lookup(resource.type, resource.id, permission)
