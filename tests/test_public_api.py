"""The package namespace is the public embeddable API: ``__all__`` is sorted and complete."""

from __future__ import annotations

import importlib
import inspect

import zanzi

REQUIRED = {
    "open",
    "Service",
    "CheckItem",
    "ZanziError",
    # results
    "CheckResult",
    "DeleteResult",
    "ExpandResult",
    "LookupResourceResult",
    "LookupSubjectResult",
    "RelationshipChange",
    "RelationshipStream",
    "SchemaResult",
    "WatchEvent",
    "WriteResult",
    # model
    "ObjectRef",
    "SubjectRef",
    "Relationship",
    "Caveat",
    "Update",
    "Operation",
    "RelationshipFilter",
    "SubjectFilter",
    "Precondition",
    "Consistency",
    "Permissionship",
    "ExpandTree",
    "ExpandSubject",
    "SetOperation",
}


def public_names() -> set[str]:
    return {
        name
        for name, value in vars(zanzi).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and type(value).__module__ != "__future__"  # `from __future__ import annotations`
    }


def test_all_is_sorted_and_unique() -> None:
    assert zanzi.__all__ == sorted(zanzi.__all__)
    assert len(set(zanzi.__all__)) == len(zanzi.__all__)


def test_all_is_complete() -> None:
    assert public_names() == set(zanzi.__all__)


def test_all_holds_the_required_api() -> None:
    assert REQUIRED <= set(zanzi.__all__)


def test_every_name_is_importable() -> None:
    module = importlib.import_module("zanzi")
    for name in zanzi.__all__:
        assert getattr(module, name) is not None
        exec(f"from zanzi import {name}", {})


def test_open_is_the_service_factory() -> None:
    with zanzi.open("memory://") as db:
        assert isinstance(db, zanzi.Service)
        token = db.write_schema("definition user {}\n\ndefinition doc {\n    relation viewer: user\n}\n")
        db.write_relationships(["doc:1#viewer@user:a"])
        result = db.check("doc:1", "viewer", "user:a", consistency=zanzi.Consistency.at_least_as_fresh(token))
        assert isinstance(result, zanzi.CheckResult)
        assert result.permissionship is zanzi.Permissionship.HAS_PERMISSION
    assert issubclass(zanzi.ZanziError, Exception)
