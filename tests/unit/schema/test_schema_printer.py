"""The printer: canonical layout, parentheses, comments, and that its output compiles back."""

from __future__ import annotations

import pytest

from zanzi.schema import compile_schema, ir, print_schema
from zanzi.schema.printer import print_rewrite

A, B, C, D = (ir.ComputedUserset(n) for n in ("aaa", "bbb", "ccc", "ddd"))


@pytest.mark.parametrize(
    ("rewrite", "text"),
    [
        (ir.Union((A, B, C)), "aaa + bbb + ccc"),
        (ir.Union((A, ir.Intersection((B, C)))), "aaa + (bbb & ccc)"),
        (ir.Intersection((ir.Union((A, B)), C)), "(aaa + bbb) & ccc"),
        (ir.Exclusion(ir.Exclusion(A, B), C), "aaa - bbb - ccc"),
        (ir.Exclusion(A, ir.Exclusion(B, C)), "aaa - (bbb - ccc)"),
        (ir.Exclusion(ir.Union((A, B)), ir.Intersection((C, D))), "(aaa + bbb) - (ccc & ddd)"),
        (
            ir.Union((ir.Arrow("aaa", "bbb"), ir.Arrow("ccc", "ddd", "all"), ir.Nil())),
            "aaa->bbb + ccc.all(ddd) + nil",
        ),
        (ir.SelfRef(), "self"),
    ],
)
def test_expressions(rewrite: ir.Rewrite, text: str) -> None:
    assert print_rewrite(rewrite) == text


def test_layout() -> None:
    text = print_schema(
        compile_schema(
            "use expiration\n"
            "/** people */ definition user {}\n"
            "caveat cav(num int, names list<string>) {\n    num == 1\n      && 'x' in names\n}\n"
            "definition doc {\n"
            "  // who can see it\n  relation viewer: user | user:* with cav | user with cav and expiration\n"
            "  permission view: user = viewer\n  relation owner: user\n}"
        )
    )
    assert text == (
        "use expiration\n\n"
        "caveat cav(num int, names list<string>) {\n\tnum == 1\n      && 'x' in names\n}\n\n"
        "/** people */\ndefinition user {}\n\n"
        "definition doc {\n"
        "\t// who can see it\n\trelation viewer: user | user:* with cav | user with cav and expiration\n"
        "\tpermission view: user = viewer\n\trelation owner: user\n}\n"
    )


def test_printed_text_compiles_back_to_the_same_schema() -> None:
    source = (
        "use self\ndefinition user {\n  relation friend: user\n  permission myself = self + friend\n}\n"
        "definition doc {\n  relation parent: doc\n  relation viewer: user | user#friend\n"
        "  permission view = (viewer - parent->view) & (nil + parent.all(view))\n}"
    )
    schema = compile_schema(source)
    printed = print_schema(schema)
    assert compile_schema(printed) == schema
    assert print_schema(compile_schema(printed)) == printed
    assert printed.startswith("use self\n\n")


def test_plain_text_comments_become_line_comments() -> None:
    schema = ir.Schema({"doc": ir.Definition("doc", comment="first line\nsecond")})
    assert print_schema(schema) == "// first line\n// second\ndefinition doc {}\n"


def test_members_without_positions_print_relations_first() -> None:
    schema = ir.Schema(
        {
            "doc": ir.Definition(
                "doc",
                {"viewer": ir.Relation("viewer", (ir.AllowedSubject("doc"),))},
                {"view": ir.Permission("view", ir.ComputedUserset("viewer"))},
            )
        }
    )
    assert print_schema(schema) == "definition doc {\n\trelation viewer: doc\n\tpermission view = viewer\n}\n"


def test_empty_schema() -> None:
    assert print_schema(ir.Schema()) == ""
