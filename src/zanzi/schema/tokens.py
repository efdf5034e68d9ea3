"""Token kinds, tokens and source spans of the schema language.

Token kind names follow SpiceDB's lexer (``TokenTypeIdentifier``...), because parse errors quote
them ("Expected end of statement or definition, found: TokenTypePlus") and clients compare those
messages.
"""

from __future__ import annotations

import bisect
import enum
from itertools import accumulate
from typing import NamedTuple

__all__ = ["KEYWORDS", "USE_FLAGS", "SourceText", "Span", "Token", "TokenKind"]


class TokenKind(enum.Enum):
    """What a token is. ``str()`` gives SpiceDB's name for it.

    ``WHITESPACE``, ``NEWLINE`` and ``NUMBER`` complete SpiceDB's list but are never produced: the
    lexer drops whitespace, and digits lex as identifiers, as in SpiceDB.
    """

    ERROR = "TokenTypeError"
    SYNTHETIC_SEMICOLON = "TokenTypeSyntheticSemicolon"
    EOF = "TokenTypeEOF"
    WHITESPACE = "TokenTypeWhitespace"
    SINGLELINE_COMMENT = "TokenTypeSinglelineComment"
    MULTILINE_COMMENT = "TokenTypeMultilineComment"
    NEWLINE = "TokenTypeNewline"
    KEYWORD = "TokenTypeKeyword"
    IDENTIFIER = "TokenTypeIdentifier"
    NUMBER = "TokenTypeNumber"
    LEFT_BRACE = "TokenTypeLeftBrace"
    RIGHT_BRACE = "TokenTypeRightBrace"
    LEFT_PAREN = "TokenTypeLeftParen"
    RIGHT_PAREN = "TokenTypeRightParen"
    PIPE = "TokenTypePipe"
    PLUS = "TokenTypePlus"
    MINUS = "TokenTypeMinus"
    AND = "TokenTypeAnd"
    DIV = "TokenTypeDiv"
    EQUALS = "TokenTypeEquals"
    COLON = "TokenTypeColon"
    SEMICOLON = "TokenTypeSemicolon"
    RIGHT_ARROW = "TokenTypeRightArrow"
    HASH = "TokenTypeHash"
    ELLIPSIS = "TokenTypeEllipsis"
    STAR = "TokenTypeStar"
    QUESTION_MARK = "TokenTypeQuestionMark"
    CONDITIONAL_OR = "TokenTypeConditionalOr"
    CONDITIONAL_AND = "TokenTypeConditionalAnd"
    EXCLAMATION_POINT = "TokenTypeExclamationPoint"
    LEFT_BRACKET = "TokenTypeLeftBracket"
    RIGHT_BRACKET = "TokenTypeRightBracket"
    PERIOD = "TokenTypePeriod"
    COMMA = "TokenTypeComma"
    PERCENT = "TokenTypePercent"
    LESS_THAN = "TokenTypeLessThan"
    GREATER_THAN = "TokenTypeGreaterThan"
    LESS_THAN_OR_EQUAL = "TokenTypeLessThanOrEqual"
    GREATER_THAN_OR_EQUAL = "TokenTypeGreaterThanOrEqual"
    EQUAL_EQUAL = "TokenTypeEqualEqual"
    NOT_EQUAL = "TokenTypeNotEqual"
    STRING = "TokenTypeString"

    # Identity hashing (members are singletons): the lexer and parser look kinds up in sets a lot.
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


#: Words that are always keywords. ``use`` flags turn more words into keywords (``USE_FLAGS``).
KEYWORDS = frozenset({"definition", "caveat", "relation", "permission", "nil", "with"})

#: ``use <flag>`` -> the words that become keywords once the flag is on.
USE_FLAGS: dict[str, frozenset[str]] = {
    "expiration": frozenset({"expiration", "and"}),
    "import": frozenset({"import"}),
    "partial": frozenset({"partial"}),
    "self": frozenset({"self"}),
    "typechecking": frozenset({"typechecking"}),
}


class Span(NamedTuple):
    """A stretch of source text.

    ``start``/``end`` are code-point (rune) offsets, ``byte_start``/``byte_end`` UTF-8 byte offsets;
    both ends are exclusive. ``line`` and ``column`` (1-based, counted in code points, a tab is one
    column) locate ``start``. Error spans follow SpiceDB: they run from the offending token back to
    the end of the last good token, so ``end`` may be before ``start``. (An immutable named tuple
    rather than a dataclass because every AST node has one and they must be cheap to make.)
    """

    start: int
    end: int
    byte_start: int
    byte_end: int
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class Token(NamedTuple):
    """One lexeme and where it is (:attr:`span`).

    ``comments`` holds the comments seen just before this token (filled in by the parser's token
    reader). ``error`` is the lexer's explanation for an ``ERROR`` token. (A flat named tuple
    rather than a dataclass holding a :class:`Span`: a large schema has hundreds of thousands of
    tokens, and one small object per token keeps lexing and garbage collection cheap.)
    """

    kind: TokenKind
    value: str
    start: int
    end: int
    byte_start: int
    byte_end: int
    line: int
    column: int
    comments: tuple[str, ...] = ()
    error: str = ""

    @property
    def span(self) -> Span:
        return Span(self.start, self.end, self.byte_start, self.byte_end, self.line, self.column)


class SourceText:
    """Schema source text plus the tables that turn offsets into lines, columns and byte offsets."""

    __slots__ = ("_byte_offsets", "_line_starts", "name", "text")

    def __init__(self, text: str, name: str = "schema") -> None:
        self.text = text
        self.name = name
        starts = [0]
        index = text.find("\n")
        while index != -1:
            starts.append(index + 1)
            index = text.find("\n", index + 1)
        self._line_starts = starts
        self._byte_offsets: list[int] | None = None
        if not text.isascii():
            self._byte_offsets = [0, *accumulate(len(ch.encode("utf-8")) for ch in text)]

    def line_column(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a code-point offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        """The span from code-point offset ``start`` to ``end``."""
        line = bisect.bisect_right(self._line_starts, start)
        column = start - self._line_starts[line - 1] + 1
        offsets = self._byte_offsets
        if offsets is None:
            return Span(start, end, start, end, line, column)
        size = len(offsets) - 1
        return Span(
            start, end, offsets[max(0, min(start, size))], offsets[max(0, min(end, size))], line, column
        )

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if line < 1 or line > len(self._line_starts):
            return ""
        begin = self._line_starts[line - 1]
        stop = self.text.find("\n", begin)
        return self.text[begin : stop if stop != -1 else len(self.text)].rstrip("\r")

    def excerpt(self, line: int, column: int) -> str:
        """A two-line excerpt: the source line and a caret under ``column``."""
        text = self.line_text(line)
        if not text and line > len(self._line_starts):
            return ""
        prefix = f"{line:>4} | "
        pointer = "".join("\t" if ch == "\t" else " " for ch in text[: max(column - 1, 0)])
        return f"{prefix}{text}\n{' ' * (len(prefix) - 2)}| {pointer}^"
