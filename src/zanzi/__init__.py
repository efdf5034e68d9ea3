"""Zanzi: Google Zanzibar-style relationship-based authorization for Python.

Embedded use::

    import zanzi

    db = zanzi.open("sqlite:///authz.db")
    db.write_schema(open("schema.zed").read())
    token = db.write_relationships(["document:readme#viewer@user:alice"])
    db.check("document:readme", "view", "user:alice",
             consistency=zanzi.Consistency.at_least_as_fresh(token)).allowed
"""

from __future__ import annotations

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
from zanzi.api.service import CheckItem, Service, open
from zanzi.errors import ZanziError
from zanzi.model import (
    Caveat,
    Consistency,
    ConsistencyMode,
    ExpandSubject,
    ExpandTree,
    ObjectRef,
    Operation,
    Permissionship,
    Precondition,
    PreconditionKind,
    Relationship,
    RelationshipFilter,
    SetOperation,
    SubjectFilter,
    SubjectRef,
    Update,
)
from zanzi.store.base import ChangeKind

__all__ = [
    "Caveat",
    "ChangeKind",
    "CheckItem",
    "CheckResult",
    "Consistency",
    "ConsistencyMode",
    "DeleteResult",
    "ExpandResult",
    "ExpandSubject",
    "ExpandTree",
    "LookupResourceResult",
    "LookupSubjectResult",
    "ObjectRef",
    "Operation",
    "Permissionship",
    "Precondition",
    "PreconditionKind",
    "Relationship",
    "RelationshipChange",
    "RelationshipFilter",
    "RelationshipStream",
    "SchemaResult",
    "Service",
    "SetOperation",
    "SubjectFilter",
    "SubjectRef",
    "Update",
    "WatchEvent",
    "WriteResult",
    "ZanziError",
    "open",
]
