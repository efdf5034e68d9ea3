"""The parser: tree shapes, precedence, spans, comments, error recovery and the exception."""

from __future__ import annotations

import pytest

from zanzi.errors import SchemaSyntaxError
from zanzi.schema import ast, parse
from zanzi.schema.parser import parse_tree


def _expr(text: str) -> ast.Expr:
    tree = parse(f"definition doc {{\n  permission view = {text}\n}}")
    definition = tree.items[0]
    assert isinstance(definition, ast.Definition)
    permission = definition.members[0]
    assert isinstance(permission, ast.Permission) and permission.expression is not None
    return permission.expression


def _shape(node: ast.Expr) -> str:
    if isinstance(node, ast.Identifier):
        return node.name
    if isinstance(node, ast.NilExpr):
        return "nil"
    if isinstance(node, ast.SelfExpr):
        return "self"
    if isinstance(node, ast.ArrowExpr):
        arrow = f".{node.function}" if node.function else "->"
        return f"({_shape(node.left)}{arrow}{_shape(node.right)})"
    assert isinstance(node, ast.BinaryExpr)
    symbol = {"union": "+", "intersection": "&", "exclusion": "-"}[node.op]
    return f"({_shape(node.left)} {symbol} {_shape(node.right)})"


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("a + b + c", "((a + b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a & b & c", "((a & b) & c)"),
        # `-` binds loosest, then `&`, then `+` (SpiceDB's order)
        ("a + b - c", "((a + b) - c)"),
        ("a - b + c", "(a - (b + c))"),
        ("a & b + c", "(a & (b + c))"),
        ("a + b & c", "((a + b) & c)"),
        ("a - b & c", "(a - (b & c))"),
        ("(a - b) + c", "((a - b) + c)"),
        ("a->b + c.all(d)", "((a->b) + (c.alld))"),
        ("a.any(b).all(c)->d", "(((a.anyb).allc)->d)"),
        ("nil + a", "(nil + a)"),
    ],
)
def test_precedence_and_associativity(text: str, shape: str) -> None:
    assert _shape(_expr(text)) == shape


def test_spans_locate_nodes() -> None:
    node = _expr("viewer + parent->view")
    assert isinstance(node, ast.BinaryExpr)
    assert (node.span.line, node.span.column) == (2, 21)
    assert isinstance(node.right, ast.ArrowExpr)
    assert (node.right.span.start, node.right.span.end) == (46, 58)


def test_definition_with_everything() -> None:
    tree = parse(
        "use expiration\n"
        "/** docs */\n"
        "definition org/team/doc {\n"
        "  relation viewer: user | group#member | group#... | user:* with cav"
        " | user with cav and expiration\n"
        "  permission view: user | team = viewer\n"
        "}\n"
        "caveat cav(num int, names list<string>, m map<any>) {\n"
        "  num > 1 && {'k': 'v'}.k == 'v'\n"
        "}"
    )
    use, definition, caveat = tree.items
    assert isinstance(use, ast.UseFlag) and use.name == "expiration"
    assert isinstance(definition, ast.Definition)
    assert definition.name == "org/team/doc"
    assert definition.comments == ("/** docs */",)
    relation, permission = definition.members
    assert isinstance(relation, ast.Relation) and relation.types is not None
    refs = relation.types.types
    assert [(r.type_name, r.relation, r.wildcard) for r in refs] == [
        ("user", None, False),
        ("group", "member", False),
        ("group", "...", False),
        ("user", None, True),
        ("user", None, False),
    ]
    assert refs[3].caveat is not None and refs[3].caveat.name == "cav"
    assert refs[4].trait is not None and refs[4].trait.name == "expiration"
    assert isinstance(permission, ast.Permission) and permission.annotation is not None
    assert [t.name for t in permission.annotation.types] == ["user", "team"]
    assert isinstance(caveat, ast.CaveatDefinition)
    assert [(p.name, str(p.type)) for p in caveat.parameters] == [
        ("num", "int"),
        ("names", "list<string>"),
        ("m", "map<any>"),
    ]
    assert caveat.expression is not None
    assert caveat.expression.text.strip() == "num > 1 && {'k': 'v'}.k == 'v'"


def test_caveat_body_may_contain_braces_in_strings_and_maps() -> None:
    tree = parse("caveat cav(m map<string>) {\n  m == {'a': '}'} && '{' != '}'\n}\ndefinition user {}")
    caveat = tree.items[0]
    assert isinstance(caveat, ast.CaveatDefinition) and caveat.expression is not None
    assert caveat.expression.text == "m == {'a': '}'} && '{' != '}'"
    assert isinstance(tree.items[1], ast.Definition)


def test_semicolons_and_one_line_blocks() -> None:
    tree = parse("definition user {} definition doc { relation viewer: user; permission view = viewer; }")
    assert [item.name for item in tree.items if isinstance(item, ast.Definition)] == ["user", "doc"]


def test_partials_and_imports() -> None:
    tree = parse(
        'use partial\nuse import\nimport "a/b.zed"\n'
        "partial part {\n  ...other\n}\ndefinition d00 {\n  ...part\n}"
    )
    kinds = [type(item).__name__ for item in tree.items]
    assert kinds == ["UseFlag", "UseFlag", "Import", "Partial", "Definition"]
    imported = tree.items[2]
    assert isinstance(imported, ast.Import) and imported.path == "a/b.zed"
    definition = tree.items[4]
    assert isinstance(definition, ast.Definition)
    assert isinstance(definition.members[0], ast.PartialRef) and definition.members[0].name == "part"


SYNTAX_ERRORS = [
    ("definition doc {\n  relation viewer user\n}", 2, 19,
     "Expected one of: [TokenTypeColon], found: TokenTypeIdentifier"),
    ("definition doc {\n  permission view = a +\n}", 3, 1,
     "Expected right hand expression, found: TokenTypeRightBrace"),
    ("definition doc {\n  permission view = a.none(b)\n}", 2, 27,
     "Expected 'any' or 'all' for arrow function, found: none"),
    ("definition doc {", 1, 17,
     "Expected end of statement or definition, found: TokenTypeError (unexpected end of input)"),
    ("definition doc {}\nuse expiration", 2, 15,
     "`use` expressions must be declared before any definition"),
    ("use magic\ndefinition doc {}", 1, 10,
     "Unknown use flag: `magic`. Options are: expiration, import, partial, self, typechecking"),
    ("caveat cav(num int) { num == 1 ` }", 1, 32,
     "Expected one of: [TokenTypeRightBrace], found: TokenTypeError "
     "(unrecognized character at this location: U+0060 '`')"),
    ("definition doc {\n  permission view = self\n}", None, None, ""),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "column", "message"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, line: int | None, column: int | None, message: str) -> None:
    if line is None:
        assert parse(text).ok  # `self` is a plain name without `use self`
        return
    with pytest.raises(SchemaSyntaxError) as raised:
        parse(text, source="doc.zed")
    error = raised.value
    assert (error.line, error.column) == (line, column)
    assert error.message == f"parse error in `doc.zed`, line {line}, column {column}: {message}"
    assert error.source == "doc.zed"
    assert error.reason == "ERROR_REASON_SCHEMA_PARSE_ERROR"


def test_the_parser_recovers_and_reports_several_errors() -> None:
    tree = parse_tree(
        "definition doc {\n  relation viewer: user | user: | team\n  permission view = viewer\n}"
    )
    # A broken wildcard does not stop the rest of the definition from parsing.
    assert [e.message for e in tree.diagnostics] == ["Expected one of: [TokenTypeStar], found: TokenTypePipe"]
    definition = tree.items[0]
    assert isinstance(definition, ast.Definition)
    assert [m.name for m in definition.members] == ["viewer", "view"]


def test_excerpt_points_at_the_error() -> None:
    with pytest.raises(SchemaSyntaxError) as raised:
        parse("definition doc {\n\trelation viewer: user + team\n}")
    assert raised.value.excerpt == "   2 | \trelation viewer: user + team\n     | \t                      ^"


def test_dump_prints_spicedb_format() -> None:
    text = ast.dump(parse("definition doc {}", source="t"))
    assert text.splitlines() == [
        "NodeTypeFile",
        "  end-rune = 16",
        "  input-source = t",
        "  start-rune = 0",
        "  child-node =>",
        "    NodeTypeDefinition",
        "      definition-name = doc",
        "      end-rune = 16",
        "      input-source = t",
        "      start-rune = 0",
    ]
