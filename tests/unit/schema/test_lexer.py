"""The lexer: token kinds, synthetic semicolons, ``use`` flags, offsets and errors."""

from __future__ import annotations

import pytest

from zanzi.schema.lexer import apply_use_flags, tokenize
from zanzi.schema.tokens import SourceText, TokenKind


def _kinds(text: str) -> list[str]:
    return [f"{t.kind.name}:{t.value}" if t.value.strip() else t.kind.name for t in tokenize(text)]


def test_definition_tokens() -> None:
    assert _kinds("definition doc {\n  relation viewer: user#member | user:*\n}") == [
        "KEYWORD:definition", "IDENTIFIER:doc", "LEFT_BRACE:{",
        "KEYWORD:relation", "IDENTIFIER:viewer", "COLON::", "IDENTIFIER:user", "HASH:#", "IDENTIFIER:member",
        "PIPE:|", "IDENTIFIER:user", "COLON::", "STAR:*", "SYNTHETIC_SEMICOLON",
        "RIGHT_BRACE:}", "EOF",
    ]  # fmt: skip


def test_operators_are_longest_match() -> None:
    assert [t.kind for t in tokenize("a->b ... || && != <= >= == - > < = . & |")][:-1] == [
        TokenKind.IDENTIFIER, TokenKind.RIGHT_ARROW, TokenKind.IDENTIFIER, TokenKind.ELLIPSIS,
        TokenKind.CONDITIONAL_OR, TokenKind.CONDITIONAL_AND, TokenKind.NOT_EQUAL,
        TokenKind.LESS_THAN_OR_EQUAL, TokenKind.GREATER_THAN_OR_EQUAL, TokenKind.EQUAL_EQUAL, TokenKind.MINUS,
        TokenKind.GREATER_THAN,
        TokenKind.LESS_THAN, TokenKind.EQUALS, TokenKind.PERIOD, TokenKind.AND, TokenKind.PIPE,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "synthetic"),
    [
        ("foo\n", True),  # identifier
        ("nil\n", True),  # keyword
        ("}\n", True),
        (")\n", True),
        ("*\n", True),
        ("{\n", False),
        ("+\n", False),
        (":\n", False),
        ("'str'\n", False),
        ("foo // trailing comment\n", True),  # comments do not count
        ("foo /* a\nb */\n", True),
    ],
)
def test_newline_becomes_a_statement_end_after_some_tokens(text: str, synthetic: bool) -> None:
    kinds = [t.kind for t in tokenize(text)]
    assert (TokenKind.SYNTHETIC_SEMICOLON in kinds) is synthetic


def test_only_the_first_newline_is_a_statement_end() -> None:
    tokens = tokenize("foo\n\r\n\nbar")
    assert [t.kind for t in tokens] == [
        TokenKind.IDENTIFIER,
        TokenKind.SYNTHETIC_SEMICOLON,
        TokenKind.IDENTIFIER,
        TokenKind.EOF,
    ]
    assert tokens[1].start == 3


def test_comments_are_tokens() -> None:
    tokens = tokenize("/** doc */ // line\ndefinition")
    assert [(t.kind, t.value) for t in tokens[:2]] == [
        (TokenKind.MULTILINE_COMMENT, "/** doc */"),
        (TokenKind.SINGLELINE_COMMENT, "// line"),
    ]


def test_strings_single_double_and_triple_quoted() -> None:
    assert [t.value for t in tokenize("'a' \"b\" \"\"\"c\nd\"\"\" '''e'''")][:-1] == [
        "'a'",
        '"b"',
        '"""c\nd"""',
        "'''e'''",
    ]


@pytest.mark.parametrize(
    ("text", "value", "error"),
    [
        ("a `", "`", "unrecognized character at this location: U+0060 '`'"),
        ("'open\n", "\n", "Unterminated string"),
        ("'open", "", "Unterminated string"),
        ("/* never closed", "", "Unterminated multiline comment"),
    ],
)
def test_lexer_stops_at_the_first_error(text: str, value: str, error: str) -> None:
    last = tokenize(text)[-1]
    assert last.kind is TokenKind.ERROR
    assert last.value == value
    assert last.error == error


def test_unicode_identifiers_and_offsets_in_code_points() -> None:
    tokens = tokenize("naïve 一级")
    assert [(t.value, t.start, t.end) for t in tokens[:2]] == [("naïve", 0, 5), ("一级", 6, 8)]


def test_use_flags_turn_words_into_keywords_until_the_first_definition() -> None:
    tokens = apply_use_flags(tokenize("use expiration\ndefinition a { expiration and self }\nuse self\nself"))
    words = {(t.value, t.kind) for t in tokens if t.value in ("expiration", "and", "self")}
    assert (("expiration", TokenKind.KEYWORD)) in words
    assert ("and", TokenKind.KEYWORD) in words
    assert ("self", TokenKind.IDENTIFIER) in words  # `use self` after a definition does nothing
    assert ("self", TokenKind.KEYWORD) not in words


def test_without_use_the_flag_words_are_identifiers() -> None:
    tokens = apply_use_flags(tokenize("definition a { expiration and self partial import }"))
    assert all(t.kind is not TokenKind.KEYWORD for t in tokens if t.value not in ("definition",))


def test_source_text_maps_offsets_to_lines_columns_and_bytes() -> None:
    source = SourceText("ab\n\tcé\nx")
    span = source.span(4, 6)  # "cé"
    assert (span.line, span.column) == (2, 2)
    assert (span.byte_start, span.byte_end) == (4, 7)
    assert source.line_text(2) == "\tcé"
    assert source.excerpt(2, 2) == "   2 | \tcé\n     | \t^"


def test_every_token_has_a_span_with_line_and_column() -> None:
    tokens = tokenize("definition doc {\n\t/* c\n */ relation x: user\n}")
    spans = {t.value: t.span for t in tokens}
    assert spans["definition"] == (0, 10, 0, 10, 1, 1)
    assert (spans["relation"].line, spans["relation"].column) == (3, 5)
    assert (spans["user"].line, spans["user"].column) == (3, 17)
    assert (spans["}"].line, spans["}"].column) == (4, 1)


def test_spans_of_non_ascii_text_have_byte_offsets() -> None:
    tokens = tokenize("caveat c(a string) {\n  a == '一级' && b\n}")
    literal = next(t for t in tokens if t.value == "'一级'")
    assert (literal.start, literal.end) == (28, 32)
    assert (literal.span.byte_start, literal.span.byte_end) == (28, 36)
    b = next(t for t in tokens if t.value == "b")
    assert (b.span.line, b.span.column) == (2, 16)
    assert b.span.byte_start == b.start + 4
