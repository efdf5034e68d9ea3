"""Tokens -> parse tree: a recursive-descent parser that mirrors SpiceDB's, error recovery included.

Like SpiceDB's parser it never backtracks. When something is missing it records an
:class:`~zanzi.schema.ast.ErrorNode` on the node being built and returns what it has; the caller
carries on where that makes sense (the next allowed type, the next definition...). So one parse
can report several problems, and the error positions and messages match SpiceDB's.

Operator precedence, loosest first: ``-`` (exclusion), ``&`` (intersection), ``+`` (union), then
arrows (``->``, ``.any()``, ``.all()``). Every binary operator is left-associative, so
``a - b + c`` is ``a - (b + c)`` and ``a - b - c`` is ``(a - b) - c``, exactly as in SpiceDB.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from zanzi.errors import SchemaSyntaxError
from zanzi.schema import ast
from zanzi.schema.lexer import apply_use_flags, tokenize
from zanzi.schema.tokens import USE_FLAGS, SourceText, Span, Token, TokenKind

__all__ = ["parse", "parse_tree", "syntax_error"]

_Op = Literal["union", "intersection", "exclusion"]

# Loosest first.
_BINARY_LEVELS: tuple[tuple[TokenKind, _Op], ...] = (
    (TokenKind.MINUS, "exclusion"),
    (TokenKind.AND, "intersection"),
    (TokenKind.PLUS, "union"),
)

_COMMENTS = frozenset({TokenKind.SINGLELINE_COMMENT, TokenKind.MULTILINE_COMMENT})
_TERMINATORS = (TokenKind.SYNTHETIC_SEMICOLON, TokenKind.SEMICOLON, TokenKind.EOF)
_ARROW_OPS = (TokenKind.RIGHT_ARROW, TokenKind.PERIOD)
_ALL_FLAGS = ", ".join(sorted(USE_FLAGS))
_DEAD = Token(TokenKind.ERROR, "", 0, 0, 0, 0, 1, 1, error="unexpected end of input")


class _Parser:
    def __init__(self, source: SourceText) -> None:
        self._src = source
        self._tokens = apply_use_flags(tokenize(source.text, source))
        self._index = 0
        self._cur = Token(TokenKind.EOF, "", 0, 0, 0, 0, 1, 1)
        self._prev = self._cur
        self._stack: list[list[ast.ErrorNode]] = []
        self._diagnostics: list[ast.ErrorNode] = []
        self._seen_definition = False

    # -- token plumbing ---------------------------------------------------------------------

    def _advance(self) -> None:
        comments: list[str] = []
        tokens = self._tokens
        while self._index < len(tokens):
            token = tokens[self._index]
            self._index += 1
            if token.kind in _COMMENTS:
                comments.append(token.value)
                continue
            if comments:
                token = token._replace(comments=tuple(comments))
            self._prev, self._cur = self._cur, token
            return
        self._prev, self._cur = self._cur, _DEAD

    def _is(self, *kinds: TokenKind) -> bool:
        return self._cur.kind in kinds

    def _is_keyword(self, word: str) -> bool:
        return self._cur.kind is TokenKind.KEYWORD and self._cur.value == word

    def _try_consume(self, *kinds: TokenKind) -> Token | None:
        if self._cur.kind in kinds:
            token = self._cur
            self._advance()
            return token
        return None

    def _consume(self, *kinds: TokenKind) -> Token | None:
        token = self._try_consume(*kinds)
        if token is None:
            expected = " ".join(str(k) for k in kinds)
            self._emit(f"Expected one of: [{expected}], found: {self._cur.kind}")
        return token

    def _try_consume_keyword(self, word: str) -> bool:
        if self._is_keyword(word):
            self._advance()
            return True
        return False

    def _consume_keyword(self, word: str) -> bool:
        if self._try_consume_keyword(word):
            return True
        self._emit(f"Expected keyword {word}, found token {self._cur.kind}")
        return False

    def _consume_identifier(self) -> str | None:
        token = self._try_consume(TokenKind.IDENTIFIER)
        if token is None:
            self._emit(f"Expected identifier, found token {self._cur.kind}")
            return None
        return token.value

    def _consume_type_path(self) -> str | None:
        """``name`` or ``prefix/name`` (any number of ``/`` segments)."""
        name = self._consume_identifier()
        while name is not None and self._cur.kind is TokenKind.DIV:
            self._advance()
            part = self._consume_identifier()
            name = None if part is None else f"{name}/{part}"
        return name

    def _consume_terminator(self) -> bool:
        if self._try_consume(*_TERMINATORS) is not None:
            return True
        self._emit(f"Expected end of statement or definition, found: {self._cur.kind}")
        return False

    # -- nodes and errors -------------------------------------------------------------------

    def _open(self) -> Token:
        """Start a node at the current token; errors emitted until :meth:`_close` belong to it."""
        self._stack.append([])
        return self._cur

    def _close(self, start: Token) -> tuple[Span, tuple[ast.ErrorNode, ...]]:
        errors = tuple(self._stack.pop())
        return self._span(start), errors

    def _span(self, start: Token) -> Span:
        """From the start of ``start`` to the end of the last token consumed."""
        last = self._prev
        return Span(start.start, last.end, start.byte_start, last.byte_end, start.line, start.column)

    def _error_node(self, message: str, *, with_source: bool) -> ast.ErrorNode:
        cur = self._cur
        node = ast.ErrorNode(
            span=self._span(cur),
            message=message,
            source=(cur.value or None) if with_source else None,
            detail=cur.error if cur.kind is TokenKind.ERROR else "",
            comments=cur.comments,
            past_end=cur is _DEAD,
        )
        self._diagnostics.append(node)
        return node

    def _emit(self, message: str) -> None:
        self._stack[-1].append(self._error_node(message, with_source=True))

    # -- top level --------------------------------------------------------------------------

    def parse_file(self) -> ast.File:
        start = self._open()
        items: list[ast.TopLevel] = []
        self._advance()
        if self._cur.kind is TokenKind.ERROR:
            self._emit(self._cur.error or "invalid input")
        else:
            while not self._is(TokenKind.EOF):
                self._try_consume(*_TERMINATORS)
                if self._is(TokenKind.EOF):
                    break
                item = self._top_level_item()
                if item is None:
                    self._emit(f"Unexpected token at root level: {self._cur.kind}")
                    break
                items.append(item)
        span, errors = self._close(start)
        return ast.File(span, self._src.name, tuple(items), start.comments, errors, tuple(self._diagnostics))

    def _top_level_item(self) -> ast.TopLevel | None:
        if self._is_keyword("definition"):
            return self._definition()
        if self._is_keyword("caveat"):
            return self._caveat()
        if self._is_keyword("partial"):
            return self._partial()
        if self._is_keyword("import"):
            return self._import()
        if self._cur.kind is TokenKind.IDENTIFIER and self._cur.value == "use":
            return self._use_flag()
        return None

    def _use_flag(self) -> ast.UseFlag:
        start = self._open()
        self._advance()  # `use`
        flag = self._try_consume(TokenKind.IDENTIFIER, TokenKind.KEYWORD)
        name: str | None = None
        if flag is None:
            self._emit(f"Expected identifier, found token {self._cur.kind}")
        elif flag.value not in USE_FLAGS:
            self._emit(f"Unknown use flag: `{flag.value}`. Options are: {_ALL_FLAGS}")
        else:
            name = flag.value
            if self._seen_definition:
                self._emit("`use` expressions must be declared before any definition")
        span, errors = self._close(start)
        return ast.UseFlag(span, name, start.comments, errors)

    def _import(self) -> ast.Import:
        start = self._open()
        self._consume_keyword("import")
        path: str | None = None
        token = self._try_consume(TokenKind.STRING)
        if token is None:
            self._emit(f"Expected quote-delimited string, found token {self._cur.kind}")
        else:
            quote = 3 if token.value[:3] in ('"""', "'''") and len(token.value) >= 6 else 1
            path = token.value[quote:-quote]
        span, errors = self._close(start)
        return ast.Import(span, path, start.comments, errors)

    def _definition(self) -> ast.Definition:
        start = self._open()
        self._consume_keyword("definition")
        name = self._consume_type_path()
        members: list[ast.Member] = []
        if name is not None and self._consume(TokenKind.LEFT_BRACE) is not None:
            self._members(members)
        self._seen_definition = True
        span, errors = self._close(start)
        return ast.Definition(span, name, tuple(members), start.comments, errors)

    def _partial(self) -> ast.Partial:
        start = self._open()
        self._consume_keyword("partial")
        name = self._consume_identifier()
        members: list[ast.Member] = []
        if name is not None and self._consume(TokenKind.LEFT_BRACE) is not None:
            self._members(members)
        span, errors = self._close(start)
        return ast.Partial(span, name, tuple(members), start.comments, errors)

    def _members(self, members: list[ast.Member]) -> None:
        """Relations, permissions and ``...partial`` references up to the closing ``}``."""
        while self._try_consume(TokenKind.RIGHT_BRACE) is None:
            if self._is_keyword("relation"):
                members.append(self._relation())
            elif self._is_keyword("permission"):
                members.append(self._permission())
            elif self._is(TokenKind.ELLIPSIS):
                members.append(self._partial_ref())
            if not self._consume_terminator():
                break

    def _partial_ref(self) -> ast.PartialRef:
        start = self._open()
        self._advance()  # `...`
        name = self._consume_identifier()
        span, errors = self._close(start)
        return ast.PartialRef(span, name, start.comments, errors)

    # -- relations --------------------------------------------------------------------------

    def _relation(self) -> ast.Relation:
        start = self._open()
        self._consume_keyword("relation")
        name = self._consume_identifier()
        types: ast.TypeReference | None = None
        if name is not None and self._consume(TokenKind.COLON) is not None:
            types = self._type_reference()
        span, errors = self._close(start)
        return ast.Relation(span, name, types, start.comments, errors)

    def _type_reference(self) -> ast.TypeReference:
        start = self._open()
        types = [self._specific_type()]
        while self._try_consume(TokenKind.PIPE) is not None:
            types.append(self._specific_type())
        span, errors = self._close(start)
        return ast.TypeReference(span, tuple(types), start.comments, errors)

    def _specific_type(self) -> ast.SpecificTypeRef:
        start = self._open()
        relation: str | None = None
        wildcard = False
        caveat: ast.CaveatRef | None = None
        trait: ast.TraitRef | None = None
        type_name = self._consume_type_path()
        if type_name is not None:
            relation, wildcard, caveat, trait = self._type_suffix()
        span, errors = self._close(start)
        return ast.SpecificTypeRef(span, type_name, relation, wildcard, caveat, trait, start.comments, errors)

    def _type_suffix(self) -> tuple[str | None, bool, ast.CaveatRef | None, ast.TraitRef | None]:
        relation: str | None = None
        wildcard = False
        if self._try_consume(TokenKind.COLON) is not None:
            if self._consume(TokenKind.STAR) is None:
                return None, False, None, None
            wildcard = True
        elif self._try_consume(TokenKind.HASH) is not None:
            token = self._consume(TokenKind.IDENTIFIER, TokenKind.ELLIPSIS)
            if token is None:
                return None, False, None, None
            relation = token.value
        if not self._try_consume_keyword("with"):
            return relation, wildcard, None, None
        if self._is_keyword("expiration"):
            trait = self._trait()
            if self._is_keyword("and"):
                self._emit(
                    "Unexpected keyword after expiration: the caveat must come before "
                    "expiration, e.g. `with <caveat_name> and expiration`"
                )
            return relation, wildcard, None, trait
        caveat = self._caveat_ref()
        if caveat.name is not None and self._try_consume_keyword("and"):
            return relation, wildcard, caveat, self._trait()
        return relation, wildcard, caveat, None

    def _caveat_ref(self) -> ast.CaveatRef:
        start = self._open()
        name = self._consume_type_path()
        span, errors = self._close(start)
        return ast.CaveatRef(span, name, start.comments, errors)

    def _trait(self) -> ast.TraitRef:
        start = self._open()
        name = "expiration" if self._consume_keyword("expiration") else None
        span, errors = self._close(start)
        return ast.TraitRef(span, name, start.comments, errors)

    # -- permissions ------------------------------------------------------------------------

    def _permission(self) -> ast.Permission:
        start = self._open()
        self._consume_keyword("permission")
        name = self._consume_identifier()
        expression: ast.Expr | None = None
        annotation: ast.TypeAnnotation | None = None
        if name is not None:
            if self._try_consume(TokenKind.COLON) is not None:
                annotation = self._type_annotation()
            if self._consume(TokenKind.EQUALS) is not None:
                expression = self._compute_expression()
        span, errors = self._close(start)
        return ast.Permission(span, name, expression, annotation, start.comments, errors)

    def _type_annotation(self) -> ast.TypeAnnotation:
        start = self._open()
        types: list[ast.Identifier] = []
        message = "Expected type identifier in type annotation"
        while True:
            name = self._consume_type_path()
            if name is None:
                self._emit(message)
                break
            types.append(ast.Identifier(self._span(self._cur), name, self._cur.comments))
            if self._try_consume(TokenKind.PIPE) is None:
                break
            message = "Expected type identifier after '|' in type annotation"
        span, errors = self._close(start)
        return ast.TypeAnnotation(span, tuple(types), start.comments, errors)

    def _compute_expression(self) -> ast.Expr:
        found = self._binary(0)
        if found is None:
            self._stack.append([])
            node = self._error_node("Expected compute expression for permission", with_source=False)
            self._stack.pop()
            return node
        return found

    def _binary(self, level: int) -> ast.Expr | None:
        if level == len(_BINARY_LEVELS):
            found = self._arrow()
            return found if found is not None else self._base()
        operator, op = _BINARY_LEVELS[level]
        start = self._cur
        left = self._binary(level + 1)
        if left is None:
            return None
        while self._cur.kind is operator:
            self._advance()
            right = self._binary(level + 1)
            if right is None:
                self._emit(f"Expected right hand expression, found: {self._cur.kind}")
                return left
            left = ast.BinaryExpr(self._span(start), op, left, right, start.comments)
        return left

    def _arrow(self) -> ast.Expr | None:
        start = self._cur
        left: ast.Expr | None = self._identifier()
        if left is None:
            return None
        while self._cur.kind in _ARROW_OPS:
            operator = self._cur
            self._advance()
            function: str | None = None
            if operator.kind is TokenKind.RIGHT_ARROW:
                right = self._identifier()
            else:
                function, right = self._arrow_function()
            if right is None:
                self._emit(f"Expected right hand expression, found: {self._cur.kind}")
                return left
            left = ast.ArrowExpr(self._span(start), left, right, function, start.comments)
        return left

    def _arrow_function(self) -> tuple[str | None, ast.Identifier | None]:
        """``.any(name)`` / ``.all(name)`` after the ``.``."""
        function = self._consume_identifier()
        if function is None:
            return None, None
        if function not in ("any", "all"):
            self._emit(f"Expected 'any' or 'all' for arrow function, found: {function}")
            return None, None
        if self._consume(TokenKind.LEFT_PAREN) is None:
            return None, None
        right = self._identifier()
        if right is None or self._consume(TokenKind.RIGHT_PAREN) is None:
            return None, None
        return function, right

    def _base(self) -> ast.Expr | None:
        cur = self._cur
        if cur.kind is TokenKind.LEFT_PAREN:
            self._advance()
            expression = self._compute_expression()
            self._consume(TokenKind.RIGHT_PAREN)
            if cur.comments:
                expression = replace(expression, comments=expression.comments + cur.comments)
            return expression
        if self._is_keyword("nil") or self._is_keyword("self"):
            self._advance()
            span = self._span(cur)
            return ast.NilExpr(span, cur.comments) if cur.value == "nil" else ast.SelfExpr(span, cur.comments)
        return self._identifier()

    def _identifier(self) -> ast.Identifier | None:
        cur = self._cur
        if cur.kind is not TokenKind.IDENTIFIER:
            return None
        self._advance()
        return ast.Identifier(self._span(cur), cur.value, cur.comments)

    # -- caveats ----------------------------------------------------------------------------

    def _caveat(self) -> ast.CaveatDefinition:
        start = self._open()
        self._consume_keyword("caveat")
        self._seen_definition = True
        parameters: list[ast.CaveatParameter] = []
        expression: ast.CaveatExpression | None = None
        name = self._consume_type_path()
        if name is not None and self._consume(TokenKind.LEFT_PAREN) is not None:
            expression = self._caveat_rest(parameters)
        span, errors = self._close(start)
        return ast.CaveatDefinition(span, name, tuple(parameters), expression, start.comments, errors)

    def _caveat_rest(self, parameters: list[ast.CaveatParameter]) -> ast.CaveatExpression | None:
        """Parameters, ``)``, ``{``, the CEL body and ``}``."""
        while self._is(TokenKind.IDENTIFIER):
            parameters.append(self._caveat_parameter())
            if self._try_consume(TokenKind.COMMA) is None:
                break
        if not parameters:
            return None
        if self._consume(TokenKind.RIGHT_PAREN) is None or self._consume(TokenKind.LEFT_BRACE) is None:
            return None
        expression = self._caveat_expression()
        if expression is not None:
            self._consume(TokenKind.RIGHT_BRACE)
        return expression

    def _caveat_parameter(self) -> ast.CaveatParameter:
        start = self._open()
        name = self._consume_identifier()
        type_ref = self._caveat_type() if name is not None else None
        span, errors = self._close(start)
        return ast.CaveatParameter(span, name, type_ref, start.comments, errors)

    def _caveat_type(self) -> ast.CaveatTypeRef:
        start = self._open()
        children: list[ast.CaveatTypeRef] = []
        name = self._consume_identifier()
        if name is not None and self._try_consume(TokenKind.LESS_THAN) is not None:
            children.append(self._caveat_type())
            while self._try_consume(TokenKind.COMMA) is not None:
                children.append(self._caveat_type())
            self._consume(TokenKind.GREATER_THAN)
        span, errors = self._close(start)
        return ast.CaveatTypeRef(span, name, tuple(children), start.comments, errors)

    def _caveat_expression(self) -> ast.CaveatExpression | None:
        """Every token up to the ``}`` that closes the caveat body, kept as raw text."""
        start = self._cur
        depth = 0
        while not self._is(TokenKind.EOF, TokenKind.ERROR):
            if self._cur.kind is TokenKind.RIGHT_BRACE:
                if depth == 0:
                    break
                depth -= 1
            elif self._cur.kind is TokenKind.LEFT_BRACE:
                depth += 1
            self._advance()
        if self._cur is start:
            return None
        span = self._span(start)
        return ast.CaveatExpression(span, self._src.text[span.start : span.end], start.comments)


def parse_tree(text: str, source: str = "schema") -> ast.File:
    """Parse ``text`` without raising; problems are in ``File.diagnostics``."""
    return _Parser(SourceText(text, source)).parse_file()


def syntax_error(tree: ast.File, text: str) -> SchemaSyntaxError:
    """The exception that reports a tree's first problem (and lists the others in ``errors``)."""
    source = SourceText(text, tree.source)

    def where(error: ast.ErrorNode) -> tuple[int, int]:
        if error.past_end:  # report the end of the input rather than SpiceDB's offset 0
            return source.line_column(len(text))
        return error.span.line, error.span.column

    first = tree.diagnostics[0]
    line, column = where(first)
    message = first.message + (f" ({first.detail})" if first.detail else "")
    others = []
    for error in tree.diagnostics[1:]:
        other_line, other_column = where(error)
        others.append({"line": other_line, "column": other_column, "message": error.message})
    return SchemaSyntaxError(
        f"parse error in `{tree.source}`, line {line}, column {column}: {message}",
        line=line,
        column=column,
        source=tree.source,
        excerpt=source.excerpt(line, column),
        errors=others or None,
    )


def parse(text: str, source: str = "schema") -> ast.File:
    """Parse schema text; raise :class:`SchemaSyntaxError` for the first problem found."""
    tree = parse_tree(text, source)
    if tree.diagnostics:
        raise syntax_error(tree, text)
    return tree
