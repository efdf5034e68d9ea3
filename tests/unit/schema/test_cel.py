"""The light CEL check of caveat bodies."""

from __future__ import annotations

import pytest

from zanzi.schema.cel import check_expression

PARAMS = {
    "num": "int",
    "count": "uint",
    "name": "string",
    "names": "list<string>",
    "attrs": "map<any>",
    "now": "timestamp",
    "ip": "ipaddress",
    "flag": "bool",
    "anything": "any",
}


@pytest.mark.parametrize(
    "expression",
    [
        "num == 42",
        "flag",
        "anything",
        "!flag && num > 1 || name.startsWith('a')",
        "num in [1, 2, 3]",
        "names.all(n, n.size() > 2) && names.exists(x, x == name)",
        "attrs.foo == 42 && attrs['bar'] < 56.5",
        "{'a': 1}.contains('a')",
        "now < timestamp('2024-01-01T00:00:00Z') + duration('1h')",
        "ip.in_cidr('10.0.0.0/8')",
        "count == 3u && num % 2 == 0 && -num < 0 && 0x1F > num",
        "has(attrs.foo) ? attrs.foo : false",
        "size(names) == 2 && r'raw\\d' != b'bytes' && \"\"\"multi\nline\"\"\" != ''",
        "names.map(n, n + '!').size() > 0",
        "// a comment\nnum == 1",
    ],
)
def test_valid_expressions(expression: str) -> None:
    assert check_expression(expression, PARAMS) is None


@pytest.mark.parametrize(
    ("expression", "message", "offset", "syntax"),
    [
        ("other == 1", "undeclared reference to 'other'", 0, False),
        ("num == 1 && other", "undeclared reference to 'other'", 12, False),
        ("names.all(n, m > 1)", "undeclared reference to 'm'", 13, False),
        ("num", "caveat expression must result in a boolean value: found `int`", 0, False),
        ("num + 1", "must result in a boolean value", 0, False),
        ("'text'", "found `string`", 0, False),
        ("num:{}", "Syntax error: mismatched input ':' expecting <EOF>", 3, True),
        ("num == ", "Syntax error: mismatched input <EOF>", 7, True),
        ("(num == 1", "Syntax error: mismatched input <EOF> expecting ')'", 9, True),
        ("num == 'open", "unterminated string", 7, True),
        ("num # 1", "token recognition error at: '#'", 4, True),
        ("", "Syntax error", 0, True),
    ],
)
def test_invalid_expressions(expression: str, message: str, offset: int, syntax: bool) -> None:
    problem = check_expression(expression, PARAMS)
    assert problem is not None
    assert message in problem.message
    assert problem.offset == offset
    assert problem.syntax is syntax
