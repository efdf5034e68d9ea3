"""Property: whatever the input, the schema front end fails only with Zanzi's schema errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zanzi.errors import SchemaSyntaxError, SchemaValidationError
from zanzi.schema import compile_schema, parse
from zanzi.schema.ast import dump
from zanzi.schema.parser import parse_tree

VALID = """use expiration
/** people */
definition user {}
caveat cav(num int, names list<string>) {
  num > 1 && 'a' in names
}
definition group {
  relation member: user | group#member | user:* with cav | user with expiration
}
definition doc {
  relation parent: doc
  relation viewer: user | group#member
  permission view: user = viewer + parent->view - (nil & parent.all(view))
}
"""

ALPHABET = st.sampled_from(
    list("abcdefgu{}()[]|+-&*#:;=.,<>'\"/\n\t _")
    + ["->", "...", "definition ", "relation ", "permission ", "caveat ", "with ", "nil"]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    tree = parse_tree(text)
    assert isinstance(dump(tree), str)
    try:
        parse(text)
    except SchemaSyntaxError as error:
        assert error.line >= 1 and error.column >= 1
        assert tree.diagnostics


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), st.lists(ALPHABET, max_size=3)), max_size=4
    )
)
def test_mutated_schemas_fail_only_with_schema_errors(edits: list[tuple[int, int, list[str]]]) -> None:
    text = VALID
    for at, cut, insert in edits:
        text = text[:at] + "".join(insert) + text[at + cut :]
    try:
        compile_schema(text)
    except (SchemaSyntaxError, SchemaValidationError) as error:
        assert error.line is None or error.line >= 1
