"""A light check of caveat CEL expressions: syntax, undeclared names, a boolean result.

This is not a CEL implementation. It parses the CEL grammar (literals, operators, member access,
calls, lists, maps, comprehension macros) and infers a type only where that is obvious, so it
rejects what cel-go would certainly reject at schema-write time (a syntax error, a name that is
not a parameter, an expression that is plainly not boolean) and lets everything else through.
Full type checking and evaluation belong to the caveat engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CelProblem", "check_expression"]

_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t\r\n\f]+|//[^\n]*)"
    r"|(?P<num>0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
    r"|\d+[eE][+-]?\d+|\d+[uU]?)"
    r"|(?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|\"))"
    r"|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])"
)

_LITERAL_WORDS = {"true": "bool", "false": "bool", "null": "null"}
_RELATIONS = {"==", "!=", "<", "<=", ">", ">=", "in"}
_COMPREHENSIONS = {"all", "exists", "exists_one", "map", "filter"}
_BOOL_METHODS = {
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "in_cidr",
    "isSubtreeOf",
    "all",
    "exists",
    "exists_one",
}
_CONVERSIONS = {"int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"}


@dataclass(frozen=True, slots=True)
class CelProblem:
    """What is wrong and where: ``offset`` is a code-point offset into the expression text."""

    message: str
    offset: int
    syntax: bool = False


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num, str, ident, op, eof
    text: str
    offset: int
    type: str = ""


class _Fail(Exception):
    def __init__(self, problem: CelProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN_RE.match(text, pos)
        if found is None:
            raise _Fail(CelProblem(f"Syntax error: token recognition error at: '{text[pos]}'", pos, True))
        kind = found.lastgroup or ""
        if kind == "ws":
            pos = found.end()
            continue
        if kind == "str":
            tokens.append(_string(text, pos, found.group()))
            pos = tokens[-1].offset + len(tokens[-1].text)
            continue
        value = found.group()
        literal_type = ""
        if kind == "num":
            literal_type = (
                "uint"
                if value[-1] in "uU"
                else (
                    "double"
                    if any(c in value for c in ".eE") and not value.lower().startswith("0x")
                    else "int"
                )
            )
        tokens.append(_Tok(kind, value, pos, literal_type))
        pos = found.end()
    tokens.append(_Tok("eof", "<EOF>", len(text)))
    return tokens


def _string(text: str, pos: int, opener: str) -> _Tok:
    prefix = opener.rstrip("'\"")
    quote = opener[len(prefix) :]
    raw = "r" in prefix.lower()
    kind = "bytes" if "b" in prefix.lower() else "string"
    cursor = pos + len(opener)
    while cursor < len(text):
        if text.startswith(quote, cursor):
            end = cursor + len(quote)
            return _Tok("str", text[pos:end], pos, kind)
        ch = text[cursor]
        if ch == "\\" and not raw:
            cursor += 2
            continue
        if ch == "\n" and len(quote) == 1:
            break
        cursor += 1
    raise _Fail(CelProblem("Syntax error: token recognition error: unterminated string", pos, True))


class _Checker:
    def __init__(self, tokens: list[_Tok], parameters: Mapping[str, str]) -> None:
        self._tokens = tokens
        self._index = 0
        self._params = parameters
        self._scopes: list[set[str]] = []

    @property
    def _cur(self) -> _Tok:
        return self._tokens[self._index]

    def _peek(self, ahead: int = 1) -> _Tok:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _take(self) -> _Tok:
        token = self._cur
        if token.kind != "eof":
            self._index += 1
        return token

    def _is(self, text: str) -> bool:
        return self._cur.kind == "op" and self._cur.text == text

    def _expect(self, text: str) -> None:
        if not self._is(text):
            self._mismatch(f"expecting '{text}'")
        self._take()

    def _mismatch(self, expecting: str = "") -> None:
        token = self._cur
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        suffix = f" {expecting}" if expecting else ""
        raise _Fail(CelProblem(f"Syntax error: mismatched input {shown}{suffix}", token.offset, True))

    # expr := or ('?' or ':' expr)?
    def expr(self) -> str:
        condition = self._or()
        if not self._is("?"):
            return condition
        self._take()
        when_true = self._or()
        self._expect(":")
        when_false = self.expr()
        return when_true if when_true == when_false else "dyn"

    def _or(self) -> str:
        result = self._and()
        while self._is("||"):
            self._take()
            self._and()
            result = "bool"
        return result

    def _and(self) -> str:
        result = self._relation()
        while self._is("&&"):
            self._take()
            self._relation()
            result = "bool"
        return result

    def _relation(self) -> str:
        result = self._addition()
        while (self._cur.kind == "op" and self._cur.text in _RELATIONS) or (
            self._cur.kind == "ident" and self._cur.text == "in"
        ):
            self._take()
            self._addition()
            result = "bool"
        return result

    def _addition(self) -> str:
        result = self._multiplication()
        while self._is("+") or self._is("-"):
            self._take()
            self._multiplication()
        return result

    def _multiplication(self) -> str:
        result = self._unary()
        while self._is("*") or self._is("/") or self._is("%"):
            self._take()
            self._unary()
        return result

    def _unary(self) -> str:
        if self._is("!"):
            while self._is("!"):
                self._take()
            self._member()
            return "bool"
        if self._is("-"):
            while self._is("-"):
                self._take()
            return self._member()
        return self._member()

    def _member(self) -> str:
        result = self._primary()
        while True:
            if self._is("."):
                self._take()
                if self._cur.kind != "ident":
                    self._mismatch("expecting IDENTIFIER")
                name = self._take().text
                if self._is("("):
                    result = self._method_call(name)
                else:
                    result = "dyn"
            elif self._is("["):
                self._take()
                self.expr()
                self._expect("]")
                result = "dyn"
            elif self._is("{") and result == "@type":
                self._fields()
                result = "dyn"
            else:
                return "dyn" if result == "@type" else result

    def _method_call(self, name: str) -> str:
        self._take()  # (
        bound: set[str] = set()
        if name in _COMPREHENSIONS and self._cur.kind == "ident" and self._peek().text == ",":
            bound.add(self._take().text)
            self._take()  # ,
        self._scopes.append(bound)
        try:
            self._arguments(")")
        finally:
            self._scopes.pop()
        if name in _BOOL_METHODS:
            return "bool"
        if name == "size":
            return "int"
        if name in ("map", "filter"):
            return "list"
        return "dyn"

    def _arguments(self, closer: str) -> None:
        if self._is(closer):
            self._take()
            return
        while True:
            self.expr()
            if self._is(","):
                self._take()
                if self._is(closer):
                    break
                continue
            break
        self._expect(closer)

    def _fields(self) -> None:
        """``{name: value, ...}`` after a message type name."""
        self._take()  # {
        while not self._is("}"):
            if self._cur.kind != "ident":
                self._mismatch("expecting IDENTIFIER")
            self._take()
            self._expect(":")
            self.expr()
            if not self._is(","):
                break
            self._take()
        self._expect("}")

    def _primary(self) -> str:
        token = self._cur
        if token.kind in ("num", "str"):
            self._take()
            return token.type
        if token.kind == "ident":
            return self._identifier()
        if self._is("."):  # leading-dot qualified name
            self._take()
            if self._cur.kind != "ident":
                self._mismatch("expecting IDENTIFIER")
            return self._identifier()
        if self._is("("):
            self._take()
            result = self.expr()
            self._expect(")")
            return result
        if self._is("["):
            self._take()
            self._arguments("]")
            return "list"
        if self._is("{"):
            self._take()
            self._map_entries()
            return "map"
        self._mismatch()
        return "dyn"  # pragma: no cover - _mismatch raises

    def _map_entries(self) -> None:
        while not self._is("}"):
            self.expr()
            self._expect(":")
            self.expr()
            if not self._is(","):
                break
            self._take()
        self._expect("}")

    def _identifier(self) -> str:
        token = self._take()
        name = token.text
        if name in _LITERAL_WORDS:
            return _LITERAL_WORDS[name]
        if self._is("("):  # a global function call: names of functions are not checked here
            self._take()
            self._arguments(")")
            if name in _CONVERSIONS:
                return name
            if name == "size":
                return "int"
            if name in ("has", "matches"):
                return "bool"
            return "dyn"
        if any(name in scope for scope in self._scopes):
            return "dyn"
        if name in self._params:
            return self._params[name]
        if name[:1].isupper() and self._is("{"):
            return "@type"  # message construction, e.g. google.protobuf.Duration{...}
        raise _Fail(CelProblem(f"undeclared reference to '{name}'", token.offset))


def _base_type(declared: str) -> str:
    base = declared.split("<", 1)[0].strip()
    return "dyn" if base == "any" else base


def check_expression(text: str, parameters: Mapping[str, str]) -> CelProblem | None:
    """The first problem with a caveat expression, or ``None``.

    ``parameters`` maps parameter names to their declared types (``int``, ``list<string>``...).
    """
    try:
        tokens = _tokenize(text)
        checker = _Checker(tokens, {name: _base_type(t) for name, t in parameters.items()})
        if tokens[0].kind == "eof":
            raise _Fail(CelProblem("Syntax error: mismatched input <EOF>", 0, True))
        result = checker.expr()
        if checker._cur.kind != "eof":
            checker._mismatch("expecting <EOF>")
    except _Fail as failure:
        return failure.problem
    if result not in ("bool", "dyn"):
        return CelProblem(f"caveat expression must result in a boolean value: found `{result}`", 0)
    return None
