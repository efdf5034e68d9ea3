"""Schema source text -> tokens, following SpiceDB's lexer token for token.

Two details matter to the parser:

* A newline right after an identifier, keyword, ``}``, ``)`` or ``*`` becomes a *synthetic
  semicolon* (as in Go), which ends a statement; any other newline is ignored.
* ``use <flag>`` statements, before the first ``definition`` or ``caveat``, turn more words into
  keywords for the rest of the file (``use expiration`` makes ``expiration`` and ``and`` keywords).
  :func:`apply_use_flags` does that on the token list.

The lexer stops at the first error and ends the list with an ``ERROR`` token whose ``value`` is
the offending character (empty at the end of input) and whose ``error`` explains the problem.
"""

from __future__ import annotations

import re

from zanzi.schema.tokens import KEYWORDS, USE_FLAGS, SourceText, Token, TokenKind

__all__ = ["apply_use_flags", "tokenize"]

_PUNCTUATION: dict[str, TokenKind] = {
    "->": TokenKind.RIGHT_ARROW,
    "...": TokenKind.ELLIPSIS,
    "||": TokenKind.CONDITIONAL_OR,
    "&&": TokenKind.CONDITIONAL_AND,
    "!=": TokenKind.NOT_EQUAL,
    "<=": TokenKind.LESS_THAN_OR_EQUAL,
    ">=": TokenKind.GREATER_THAN_OR_EQUAL,
    "==": TokenKind.EQUAL_EQUAL,
    "{": TokenKind.LEFT_BRACE,
    "}": TokenKind.RIGHT_BRACE,
    "(": TokenKind.LEFT_PAREN,
    ")": TokenKind.RIGHT_PAREN,
    "|": TokenKind.PIPE,
    "+": TokenKind.PLUS,
    "-": TokenKind.MINUS,
    "&": TokenKind.AND,
    "/": TokenKind.DIV,
    "=": TokenKind.EQUALS,
    ":": TokenKind.COLON,
    ";": TokenKind.SEMICOLON,
    "#": TokenKind.HASH,
    "*": TokenKind.STAR,
    "?": TokenKind.QUESTION_MARK,
    "!": TokenKind.EXCLAMATION_POINT,
    "[": TokenKind.LEFT_BRACKET,
    "]": TokenKind.RIGHT_BRACKET,
    ".": TokenKind.PERIOD,
    ",": TokenKind.COMMA,
    "%": TokenKind.PERCENT,
    "<": TokenKind.LESS_THAN,
    ">": TokenKind.GREATER_THAN,
}

_TOKEN_RE = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<ident>[A-Za-z0-9_]++)(?![^\x00-\x7f])"  # non-ASCII identifiers take the slow path
    r"|(?P<line_comment>//[^\r\n]*)"
    r"|(?P<block_comment>/\*.*?\*/)"
    r"|(?P<punct>->|\.\.\.|\|\||&&|!=|<=|>=|==|[{}()|+\-&/=:;#*?!\[\].,%<>])",
    re.DOTALL,
)

# After these, a newline is a statement terminator (a synthetic semicolon).
_SYNTHETIC_PREDECESSORS = frozenset(
    {
        TokenKind.IDENTIFIER,
        TokenKind.KEYWORD,
        TokenKind.RIGHT_BRACE,
        TokenKind.RIGHT_PAREN,
        TokenKind.STAR,
    }
)


def _is_ident_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


def _describe_rune(ch: str) -> str:
    """Go's ``%#U``: ``U+0060 '`'``."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


def tokenize(text: str, source: SourceText | None = None) -> list[Token]:
    """The tokens of ``text`` that matter, each with its :class:`Span`, ending with ``EOF`` or
    ``ERROR``.

    Comments are kept (the parser attaches them to the next node); spaces, tabs and newlines are
    not, except for the newlines that become synthetic semicolons. No ``use`` flags are applied;
    see :func:`apply_use_flags`. ``source`` (the same text) saves building its tables twice.
    """
    tokens: list[Token] = []
    append = tokens.append
    last = TokenKind.EOF  # kind of the last token that is neither a comment nor whitespace
    pos = 0
    size = len(text)
    match = _TOKEN_RE.match
    keywords = KEYWORDS
    punctuation = _PUNCTUATION
    predecessors = _SYNTHETIC_PREDECESSORS
    identifier, keyword = TokenKind.IDENTIFIER, TokenKind.KEYWORD
    # ASCII text (the usual case): offsets are byte offsets, and lines are counted on the way.
    slow = None if text.isascii() else (source if source is not None else SourceText(text))
    line, line_start = 1, 0

    def token(kind: TokenKind, value: str, start: int, end: int, error: str = "") -> Token:
        if slow is not None:
            s = slow.span(start, end)
            return Token(kind, value, start, end, s.byte_start, s.byte_end, s.line, s.column, (), error)
        return Token(kind, value, start, end, start, end, line, start - line_start + 1, (), error)

    while pos < size:
        found = match(text, pos)
        if found is not None:
            group = found.lastgroup
            end = found.end()
            if group == "ident":
                value = found.group()
                last = keyword if value in keywords else identifier
                if slow is None:
                    append(Token(last, value, pos, end, pos, end, line, pos - line_start + 1))
                else:
                    append(token(last, value, pos, end))
            elif group == "space":
                value = found.group()
                newline = value.find("\n")
                if last in predecessors:
                    first = newline
                    if "\r" in value:
                        carriage = value.find("\r")
                        first = carriage if first < 0 else min(first, carriage)
                    if first >= 0:
                        last = TokenKind.SYNTHETIC_SEMICOLON
                        append(token(last, value[first], pos + first, pos + first + 1))
                if newline >= 0:
                    line += value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
            elif group == "punct":
                value = found.group()
                if value == "/" and text.startswith("/*", pos):
                    append(token(TokenKind.ERROR, "", pos, pos, "Unterminated multiline comment"))
                    return tokens
                last = punctuation[value]
                if slow is None:
                    append(Token(last, value, pos, end, pos, end, line, pos - line_start + 1))
                else:
                    append(token(last, value, pos, end))
            else:
                kind = (
                    TokenKind.SINGLELINE_COMMENT if group == "line_comment" else TokenKind.MULTILINE_COMMENT
                )
                value = found.group()
                append(token(kind, value, pos, end))
                if "\n" in value:
                    line += value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
            pos = end
            continue
        ch = text[pos]
        if _is_ident_char(ch):
            end = pos
            while end < size and _is_ident_char(text[end]):
                end += 1
            value = text[pos:end]
            last = keyword if value in keywords else identifier
            append(token(last, value, pos, end))
            pos = end
            continue
        if ch in "\"'":
            end, error = _string_end(text, pos)
            if error:
                append(token(TokenKind.ERROR, text[end : end + 1], pos, pos + (end < size), error))
                return tokens
            value = text[pos:end]
            last = TokenKind.STRING
            append(token(last, value, pos, end))
            if "\n" in value:
                line += value.count("\n")
                line_start = pos + value.rindex("\n") + 1
            pos = end
            continue
        message = f"unrecognized character at this location: {_describe_rune(ch)}"
        append(token(TokenKind.ERROR, ch, pos, pos + 1, message))
        return tokens
    append(token(TokenKind.EOF, "", size, size))
    return tokens


def _string_end(text: str, pos: int) -> tuple[int, str]:
    """Where the quoted string at ``pos`` ends: ``"..."``, ``'...'`` or (may span lines)
    ``\"\"\"...\"\"\"``, ``\'\'\'...\'\'\'``. On error, the offending offset and a message."""
    quote = text[pos]
    triple = quote * 3
    if text.startswith(triple, pos):
        terminator, multiline, cursor = triple, True, pos + 3
    else:
        terminator, multiline, cursor = quote, False, pos + 1
    size = len(text)
    while True:
        if text.startswith(terminator, cursor):
            return cursor + len(terminator), ""
        if cursor >= size:
            return size, "Unterminated string"
        if not multiline and text[cursor] in "\r\n":
            return cursor, "Unterminated string"
        cursor += 1


def apply_use_flags(tokens: list[Token]) -> list[Token]:
    """Turn flag words into keywords, the way SpiceDB's flaggable lexer does.

    ``use <flag>`` enables ``<flag>`` only while no ``definition`` or ``caveat`` has been seen; from
    then on (the flag's own name included) the flag's words are keywords.
    """
    if not any(t.kind is TokenKind.IDENTIFIER and t.value == "use" for t in tokens):
        return tokens
    enabled: set[str] = set()
    seen_definition = False
    after_use = False
    result: list[Token] = []
    for token in tokens:
        if token.kind is TokenKind.IDENTIFIER and not seen_definition:
            if after_use:
                if token.value in USE_FLAGS:
                    enabled |= USE_FLAGS[token.value]
                after_use = False
            else:
                after_use = token.value == "use"
        if token.kind is TokenKind.KEYWORD and token.value in ("definition", "caveat"):
            seen_definition = True
        if token.kind is TokenKind.IDENTIFIER and token.value in enabled:
            token = token._replace(kind=TokenKind.KEYWORD)
        result.append(token)
    return result
