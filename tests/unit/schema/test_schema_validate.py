"""One test per validation rule: the exception type, where it points and what it says."""

from __future__ import annotations

import pytest

from zanzi.errors import SchemaValidationError
from zanzi.schema import compile_schema, ir, lint, problems, validate


def _fails(text: str, line: int, column: int, *words: str, definition: str = "", relation: str = "") -> None:
    with pytest.raises(SchemaValidationError) as raised:
        compile_schema(text)
    error = raised.value
    assert (error.line, error.column) == (line, column), error.message
    for word in words:
        assert word in error.message
    assert f"line {line}, column {column}" in error.message
    if definition:
        assert error.definition == definition
    if relation:
        assert error.relation == relation
    assert error.reason == "ERROR_REASON_SCHEMA_TYPE_ERROR"


USER = "definition user {}\n"


# -- duplicates --------------------------------------------------------------------------------


def test_duplicate_definition() -> None:
    _fails(USER + "definition doc {}\n  definition doc {}", 3, 3, "found name reused", "doc")


def test_duplicate_caveat() -> None:
    text = "caveat cav(num int) { num == 1 }\ncaveat cav(num int) { num == 2 }"
    _fails(text, 2, 1, "found name reused between multiple definitions and/or caveats: cav")


def test_definition_and_caveat_share_a_name() -> None:
    _fails("caveat user(num int) { num == 1 }\n" + USER, 2, 1, "found name reused", "user")


def test_duplicate_relation_in_a_definition() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  relation viewer: user\n}"
    _fails(
        text,
        4,
        3,
        "duplicate relation/permission name `viewer`",
        "`doc`",
        definition="doc",
        relation="viewer",
    )


def test_duplicate_relation_and_permission_names() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission viewer = nil\n}"
    _fails(text, 4, 3, "duplicate relation/permission name `viewer`", definition="doc")


def test_duplicate_allowed_type() -> None:
    text = USER + "definition doc {\n  relation viewer: user | user\n}"
    _fails(text, 3, 27, "found duplicate allowed subject type `user` on relation `viewer`", "`doc`")


# -- allowed types -----------------------------------------------------------------------------


def test_unknown_type_in_a_relation() -> None:
    text = USER + "definition doc {\n  relation viewer: user | team\n}"
    _fails(text, 3, 27, "could not lookup definition `team` for relation `viewer`", "`team` not found",
           definition="doc", relation="viewer")  # fmt: skip


def test_unknown_relation_on_a_subject_type() -> None:
    text = (
        USER
        + "definition team {\n  relation member: user\n}\n"
        + "definition doc {\n  relation viewer: team#members\n}"
    )
    _fails(text, 6, 20, "relation/permission `members` not found under definition `team`", relation="viewer")


def test_subject_relation_on_the_same_definition_must_exist() -> None:
    text = USER + "definition group {\n  relation member: user | group#owners\n}"
    _fails(text, 3, 27, "relation/permission `owners` not found under definition `group`")


def test_subject_relation_may_be_a_permission() -> None:
    schema = compile_schema(
        USER + "definition team {\n  relation direct: user\n  permission member = direct\n}\n"
        "definition doc {\n  relation viewer: team#member\n}"
    )
    assert schema.definitions["doc"].relations["viewer"].allowed == (ir.AllowedSubject("team", "member"),)


def test_subject_relation_that_includes_a_wildcard() -> None:
    text = (
        USER + "definition team {\n  relation member: user:*\n}\n"
        "definition doc {\n  relation viewer: team#member\n}"
    )
    _fails(text, 6, 20, "relation/permission `team#member` includes wildcard type `user`",
           "wildcard relations cannot be transitively included", relation="viewer")  # fmt: skip


def test_unknown_caveat() -> None:
    text = USER + "definition doc {\n  relation viewer: user with only_mondays\n}"
    _fails(text, 3, 20, "could not lookup caveat `only_mondays` for relation `viewer`", "not found")


def test_with_expiration_without_use_expiration() -> None:
    # Without `use expiration`, `expiration` is just a caveat name (as in SpiceDB) -- and there
    # is no such caveat, so the error says what to add.
    text = USER + "definition doc {\n  relation viewer: user with expiration\n}"
    _fails(text, 3, 20, "could not lookup caveat `expiration`", "add `use expiration`")


def test_expiration_trait_in_ir_needs_the_use_flag() -> None:
    schema = ir.Schema(
        {
            "user": ir.Definition("user"),
            "doc": ir.Definition(
                "doc", {"viewer": ir.Relation("viewer", (ir.AllowedSubject("user", expiration=True),))}
            ),
        }
    )
    (problem,) = problems(schema)
    assert "needs `use expiration`" in problem.message
    assert problem.definition == "doc" and problem.relation == "viewer"


def test_caveats_and_expiration_are_accepted() -> None:
    schema = compile_schema(
        "use expiration\ncaveat cav(num int) { num == 1 }\n" + USER + "definition doc {\n"
        "  relation viewer: user with cav | user:* with expiration | user with cav and expiration\n}"
    )
    assert [str(a) for a in schema.definitions["doc"].relations["viewer"].allowed] == [
        "user with cav",
        "user:* with expiration",
        "user with cav and expiration",
    ]


# -- permissions -------------------------------------------------------------------------------


def test_permission_refers_to_an_unknown_name() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}"
    _fails(text, 4, 30, "relation/permission `editor` not found under definition `doc`",
           definition="doc", relation="view")  # fmt: skip


def test_arrow_over_an_unknown_relation() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission view = parent->view\n}"
    _fails(text, 4, 21, "relation/permission `parent` not found under definition `doc`")


def test_arrow_over_a_permission() -> None:
    text = (
        USER + "definition doc {\n  relation parent: doc\n  permission upper = parent\n"
        "  permission view = upper->view\n}"
    )
    _fails(text, 5, 21, "under permission `view` under definition `doc`",
           "permissions cannot be used on the left hand side of an arrow (found `upper`)")  # fmt: skip


def test_arrow_function_over_a_permission() -> None:
    text = (
        USER
        + "definition doc {\n  relation parent: doc\n  permission upper = parent\n"
        + "  permission vvv = upper.all(vvv)\n}"
    )
    _fails(text, 5, 20, "permissions cannot be used on the left hand side of an arrow")


def test_arrow_over_a_wildcard_relation() -> None:
    text = USER + "definition doc {\n  relation parent: doc | doc:*\n  permission view = parent->view\n}"
    _fails(text, 4, 21,
           "for arrow under permission `view`: relation `doc#parent` includes wildcard type `doc`",
           "wildcard relations cannot be used on the left side of arrows")  # fmt: skip


def test_arrow_over_a_relation_that_reaches_a_wildcard_through_a_userset() -> None:
    text = (
        USER + "definition team {\n  relation member: user:*\n}\n"
        "definition doc {\n  relation owners: team#member\n  permission view = owners->member\n}"
    )
    with pytest.raises(SchemaValidationError) as raised:
        compile_schema(text)
    # SpiceDB reports the transitive wildcard on the relation first.
    assert "wildcard relations cannot be transitively included" in raised.value.message


def test_permission_refers_to_itself() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission view = view + viewer\n}"
    _fails(text, 4, 21, "permission `view` under definition `doc` references itself", relation="view")


def test_permission_refers_to_itself_inside_an_exclusion() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission view = viewer - (nil & view)\n}"
    _fails(text, 4, 37, "references itself")


def test_a_permission_may_refer_to_itself_through_an_arrow() -> None:
    schema = compile_schema(
        USER + "definition doc {\n  relation parent: doc\n  relation viewer: user\n"
        "  permission view = viewer + parent->view\n}"
    )
    assert schema.definitions["doc"].permissions["view"].rewrite == ir.Union(
        (ir.ComputedUserset("viewer"), ir.Arrow("parent", "view"))
    )


def test_aliases_in_a_cycle() -> None:
    text = (
        USER + "definition doc {\n  relation viewer: user\n  permission view = edit\n"
        "  permission edit = admin\n  permission admin = view\n}"
    )
    _fails(text, 4, 3, "under definition `doc`, there exists a cycle in permissions: admin, edit, view")


def test_self_needs_use_self_in_ir() -> None:
    schema = ir.Schema(
        {"doc": ir.Definition("doc", permissions={"myself": ir.Permission("myself", ir.SelfRef())})}
    )
    with pytest.raises(SchemaValidationError, match="needs `use self`"):
        validate(schema)
    assert compile_schema("use self\ndefinition doc {\n  permission myself = self\n}").uses == frozenset(
        {"self"}
    )


# -- names and the IR built by other front ends -------------------------------------------------


def test_names_are_checked_in_ir_too() -> None:
    schema = ir.Schema(
        {"Doc": ir.Definition("Doc", {"v": ir.Relation("v", (ir.AllowedSubject("Doc"),))})},
        {"bad name": ir.CaveatDefinition("bad name", (), "true")},
    )
    messages = [p.message for p in problems(schema)]
    assert any("caveat `bad name` is not a valid name" in m for m in messages)
    assert any("must have at least one parameter" in m for m in messages)
    assert any("error in object definition Doc" in m for m in messages)
    assert any("error in relation v" in m for m in messages)


def test_relation_without_allowed_types_in_ir() -> None:
    schema = ir.Schema({"doc": ir.Definition("doc", {"viewer": ir.Relation("viewer", ())})})
    (problem,) = problems(schema)
    assert "at least one allowed relation/permission is required to be defined for relation `viewer`" in str(
        problem
    )


def test_problems_lists_everything_and_validate_raises_the_first() -> None:
    text = USER + "definition doc {\n  permission aaa = missing_one\n  permission bbb = missing_two\n}"
    schema = compile_schema(text, validate=False)
    found = problems(schema)
    assert [(p.line, p.relation) for p in found] == [(3, "aaa"), (4, "bbb")]
    with pytest.raises(SchemaValidationError, match="missing_one"):
        validate(schema)


# -- warnings (SpiceDB lints; never errors) ------------------------------------------------------


def _warnings(text: str) -> list[tuple[str, str, int]]:
    return [(w.name, w.relation, w.position.line if w.position else 0) for w in lint(compile_schema(text))]


def test_arrow_to_a_name_no_subject_type_has_is_only_a_warning() -> None:
    text = (
        USER + "definition folder {\n  relation viewer: user\n  permission view = viewer\n}\n"
        "definition doc {\n  relation parent: folder\n  permission view = parent->nonexistent\n}"
    )
    assert _warnings(text) == [("arrow-references-unreachable-relation", "view", 8)]
    warning = lint(compile_schema(text))[0]
    assert 'Arrow `parent->nonexistent` under permission "view"' in warning.message
    assert 'does not exist on any subject types of relation "parent"' in warning.message


def test_arrow_over_a_subject_relation_warns() -> None:
    text = (
        USER + "definition group {\n  relation member: user\n  permission members = member\n}\n"
        "definition doc {\n  relation owners: group#member\n  permission view = owners->members\n}"
    )
    assert _warnings(text) == [("arrow-walks-subject-relation", "view", 8)]


def test_arrow_to_a_relation_rather_than_a_permission_warns() -> None:
    text = (
        USER + "definition folder {\n  relation viewer: user\n}\n"
        "definition doc {\n  relation parent: folder\n  permission view = parent->viewer\n}"
    )
    assert _warnings(text) == [("arrow-references-relation", "view", 7)]


def test_name_ending_with_the_definition_name_warns() -> None:
    text = USER + "definition doc {\n  relation viewer: user\n  permission view_doc = viewer\n}"
    assert _warnings(text) == [("relation-name-references-parent", "view_doc", 4)]


def test_warnings_can_be_silenced_with_a_comment() -> None:
    text = (
        USER + "definition doc {\n  relation viewer: user\n"
        "  // spicedb-ignore-warning: relation-name-references-parent\n  permission view_doc = viewer\n}"
    )
    assert _warnings(text) == []


def test_self_reference_is_also_a_lint_for_unvalidated_schemas() -> None:
    schema = compile_schema(USER + "definition doc {\n  permission view = view\n}", validate=False)
    assert [(w.name, w.relation) for w in lint(schema)] == [("permission-references-itself", "view")]
