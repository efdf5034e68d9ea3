"""The compiler: IR shape, positions, comments, prefixes, partials and caveats."""

from __future__ import annotations

import pytest

from zanzi.errors import SchemaSyntaxError, SchemaValidationError
from zanzi.schema import compile_schema, ir

SCHEMA = """\
/** a person */
definition user {}

definition group {
    // direct members
    relation member: user | group#member
}

definition doc {
    relation parent: doc
    relation viewer: user | group#member | user:*
    permission view = viewer + parent->view + (viewer & nil)
    permission edit = viewer - parent.all(view) - nil
}
"""


def test_ir_of_a_typical_schema() -> None:
    schema = compile_schema(SCHEMA)
    assert list(schema.definitions) == ["user", "group", "doc"]
    doc = schema.definitions["doc"]
    assert doc.relations["viewer"].allowed == (
        ir.AllowedSubject("user"),
        ir.AllowedSubject("group", "member"),
        ir.AllowedSubject("user", wildcard=True),
    )
    assert doc.permissions["view"].rewrite == ir.Union(
        (
            ir.ComputedUserset("viewer"),
            ir.Arrow("parent", "view"),
            ir.Intersection((ir.ComputedUserset("viewer"), ir.Nil())),
        )
    )
    assert doc.permissions["edit"].rewrite == ir.Exclusion(
        ir.Exclusion(ir.ComputedUserset("viewer"), ir.Arrow("parent", "view", "all")), ir.Nil()
    )


def test_a_single_name_is_just_a_computed_userset() -> None:
    schema = compile_schema("definition doc {\n  relation owner: doc\n  permission admin = owner\n}")
    assert schema.definitions["doc"].permissions["admin"].rewrite == ir.ComputedUserset("owner")


def test_ellipsis_means_the_object_itself() -> None:
    schema = compile_schema("definition group {\n  relation member: group#... | group#member\n}")
    assert schema.definitions["group"].relations["member"].allowed == (
        ir.AllowedSubject("group"),
        ir.AllowedSubject("group", "member"),
    )


def test_positions_and_comments() -> None:
    schema = compile_schema(SCHEMA, source="s.zed")
    user, group, doc = schema.definitions.values()
    assert user.position == ir.Position(2, 1, "s.zed")
    assert user.comment == "/** a person */"
    member = group.relations["member"]
    assert member.comment == "// direct members"
    assert (member.position.line, member.position.column) == (6, 5) if member.position else False
    assert member.allowed[1].position == ir.Position(6, 29, "s.zed")
    view = doc.permissions["view"]
    assert isinstance(view.rewrite, ir.Union)
    arrow = view.rewrite.children[1]
    assert isinstance(arrow, ir.Arrow) and arrow.position == ir.Position(12, 32, "s.zed")


def test_multiline_comments_are_normalised_like_spicedb() -> None:
    schema = compile_schema("/**\n     * one\n     *   two\n     */\ndefinition doc {}")
    assert schema.definitions["doc"].comment == "/**\n* one\n*   two\n*/"


def test_object_type_prefix() -> None:
    schema = compile_schema(
        "caveat cav(num int) { num == 1 }\ndefinition user {}\n"
        "definition doc {\n  relation viewer: user with cav | other/user\n"
        "  permission view: user = viewer\n}\n"
        "definition other/user {}",
        object_type_prefix="tenant",
    )
    assert list(schema.definitions) == ["tenant/user", "tenant/doc", "other/user"]
    assert list(schema.caveats) == ["tenant/cav"]
    doc = schema.definitions["tenant/doc"]
    assert doc.relations["viewer"].allowed == (
        ir.AllowedSubject("tenant/user", caveat="tenant/cav"),
        ir.AllowedSubject("other/user"),
    )
    assert doc.permissions["view"].types == ("tenant/user",)


def test_required_prefix() -> None:
    with pytest.raises(SchemaSyntaxError, match="found reference `user` without prefix"):
        compile_schema("definition org/doc {\n  relation viewer: user\n}", require_prefix=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("definition Doc {}", "error in object definition Doc"),
        ("definition do {}", "error in object definition do"),
        ("definition doc/ok_name/x_ {}", "error in object definition doc/ok_name/x_"),
        ("definition doc {\n  relation r_: doc\n}", "error in relation r_"),
        ("definition doc {\n  permission _ab = nil\n}", "error in permission _ab"),
        ("definition doc {\n  relation viewer: doc#Ab1\n}", "error in relation Ab1"),
        ("definition doc {\n  relation viewer: Doc\n}", "error in type reference Doc"),
    ],
)
def test_names_must_match_spicedbs_patterns(text: str, message: str) -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema(text, validate=False)
    assert message in raised.value.message


def test_longest_valid_names() -> None:
    long_name = "a" + "b" * 62 + "c"  # 64 characters
    schema = compile_schema(f"definition {long_name} {{\n  relation {long_name}: {long_name}\n}}")
    assert long_name in schema.definitions
    with pytest.raises(SchemaSyntaxError):
        compile_schema(f"definition {long_name}d {{}}")


def test_nested_arrows_are_not_supported() -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema(
            "definition doc {\n  relation parent: doc\n  permission view = parent->parent->view\n}"
        )
    assert "Nested arrows not yet supported" in raised.value.message
    assert (raised.value.line, raised.value.column) == (3, 21)


# -- partials ----------------------------------------------------------------------------------


def test_partials_expand_in_place_transitively_and_in_any_order() -> None:
    schema = compile_schema(
        "use partial\n"
        "definition user {}\n"
        "definition doc {\n  relation owner: user\n  ...viewing\n  permission admin = owner\n}\n"
        "partial viewing {\n  relation viewer: user\n  ...basics\n  permission view = viewer + owner\n}\n"
        "partial basics {\n  relation editor: user\n}\n"
    )
    doc = schema.definitions["doc"]
    assert list(doc.relations) == ["owner", "viewer", "editor"]
    assert list(doc.permissions) == ["view", "admin"]
    assert doc.relations["viewer"].position == ir.Position(9, 3, "schema")  # where the partial says it


def test_a_partial_can_be_used_by_several_definitions() -> None:
    schema = compile_schema(
        "use partial\npartial owned {\n  relation owner: user\n}\ndefinition user {}\n"
        "definition doc {\n  ...owned\n}\ndefinition folder {\n  ...owned\n}"
    )
    assert schema.definitions["doc"].relations == schema.definitions["folder"].relations


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partial aaa {\n  ...bbb\n}\npartial bbb {\n  ...aaa\n}\ndefinition ddd {\n  ...aaa\n}",
         "could not resolve partials: cycle `aaa` -> `bbb` -> `aaa`"),
        ("partial aaa {\n  ...aaa\n}", "could not resolve partials: cycle `aaa` -> `aaa`"),
        ("definition ddd {\n  ...nothing\n}", "could not find partial reference `nothing`"),
        ("partial ddd {}\ndefinition ddd {}", "found definition with same name as existing partial: `ddd`"),
        ("partial aaa {}\npartial aaa {}", "found duplicate partial `aaa`"),
        ("partial aaa {\n  relation rel: ddd\n}\ndefinition ddd {\n  relation rel: ddd\n  ...aaa\n}",
         "found duplicate relation/permission name `rel` under definition `ddd`"),
    ],
)  # fmt: skip
def test_partial_errors(text: str, message: str) -> None:
    # Partials are resolved by the compiler: a parse error for SpiceDB, except a name clash inside
    # a definition, which its type system reports.
    kind = SchemaValidationError if "duplicate relation" in message else SchemaSyntaxError
    with pytest.raises(kind) as raised:
        compile_schema("use partial\n" + text)
    assert message in raised.value.message


# -- caveats -----------------------------------------------------------------------------------


def test_caveat_ir() -> None:
    schema = compile_schema(
        "/** only on weekdays */\ncaveat weekday(day string, allowed list<string>, extra map<any>) {\n"
        "  day in allowed\n    && extra.x == 1\n}"
    )
    caveat = schema.caveats["weekday"]
    assert caveat.parameters == (
        ir.CaveatParameter("day", "string"),
        ir.CaveatParameter("allowed", "list<string>"),
        ir.CaveatParameter("extra", "map<any>"),
    )
    assert caveat.expression == "day in allowed\n    && extra.x == 1"
    assert caveat.comment == "/** only on weekdays */"
    assert caveat.position == ir.Position(2, 1, "schema")


@pytest.mark.parametrize(
    ("types", "expression"),
    [
        ("int", "param > 1"),
        ("uint", "param > 1u"),
        ("bool", "param"),
        ("string", "param.startsWith('a')"),
        ("double", "param < 2.5"),
        ("bytes", "size(param) > 0"),
        ("duration", "param > duration('1h')"),
        ("timestamp", "param < timestamp('2030-01-01T00:00:00Z')"),
        ("ipaddress", "param.in_cidr('10.0.0.0/8')"),
        ("any", "param == 1"),
        ("list<int>", "1 in param"),
        ("map<list<string>>", "'x' in param['k']"),
    ],
)
def test_every_caveat_parameter_type(types: str, expression: str) -> None:
    schema = compile_schema(f"caveat cav(param {types}) {{ {expression} }}")
    assert schema.caveats["cav"].parameters == (ir.CaveatParameter("param", types),)


def test_caveat_expressions_are_type_checked_with_positions() -> None:
    with pytest.raises(SchemaSyntaxError, match="no matching overload") as raised:
        compile_schema("definition user {}\ncaveat cav(param int) {\n  param == 'x'\n}")
    assert (raised.value.line, raised.value.column) == (3, 9)
    with pytest.raises(SchemaSyntaxError, match="boolean"):
        compile_schema("caveat cav(param int) { param + 1 }")
    with pytest.raises(SchemaSyntaxError, match="undeclared reference to 'other'"):
        compile_schema("caveat cav(param int) { other == 1 }")


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("param foobar", "unknown type `foobar`"),
        ("param list", "type `list` takes 1 type argument(s), found 0"),
        ("param int<string>", "type `int` takes 0 type argument(s), found 1"),
        ("param map<string, int>", "type `map` takes 1 type argument(s), found 2"),
        ("param int, param string", "duplicate parameter `param` defined on caveat `cav`"),
    ],
)
def test_bad_caveat_parameters(declaration: str, message: str) -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema(f"caveat cav({declaration}) {{ true }}")
    assert message in raised.value.message
    column = 12 if "duplicate" not in message else 23  # the parameter at fault
    assert (raised.value.line, raised.value.column) == (1, column)


def test_caveat_without_parameters_or_body_does_not_parse() -> None:
    with pytest.raises(SchemaSyntaxError, match="TokenTypeRightParen"):
        compile_schema("caveat cav() { true }")
    with pytest.raises(SchemaSyntaxError, match="TokenTypeRightBrace"):
        compile_schema("caveat cav(num int) {\n}")


def test_caveat_expression_errors_point_into_the_schema() -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema("definition user {}\ncaveat cav(num int) {\n  num == 1 &&\n    other > 2\n}")
    assert "invalid expression for caveat `cav`: undeclared reference to 'other'" in raised.value.message
    assert (raised.value.line, raised.value.column) == (4, 5)


def test_duplicate_use_flag() -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema("use expiration\nuse expiration\ndefinition user {}")
    expected = "parse error in `schema`, line 2, column 1: found duplicate use flag: expiration"
    assert raised.value.message == expected


def test_compile_errors_are_reported_like_spicedbs_parse_errors() -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        compile_schema("definition doc {\n  relation ab: doc\n}", source="d.zed")
    error = raised.value
    assert error.message.startswith("parse error in `d.zed`, line 2, column 3: error in relation ab: ")
    assert error.reason == "ERROR_REASON_SCHEMA_PARSE_ERROR"
    assert (error.definition, error.relation) == ("doc", "ab")
    assert error.excerpt == "   2 |   relation ab: doc\n     |   ^"
