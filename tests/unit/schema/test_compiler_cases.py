"""SpiceDB's compiler test table (``compiler_test.go`` TestCompile, data only): every success case
compiles and every failure case fails, at SpiceDB's line and column, with SpiceDB's message (or,
where the Go text is implementation-specific, its meaningful part)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.paths import SHARED
from zanzi.errors import SchemaSyntaxError, SchemaValidationError, ZanziError
from zanzi.schema import compile_schema, ir


def _shared_dir() -> Path:
    return SHARED


CASES_FILE = _shared_dir() / "conformance" / "spicedb" / "schemadsl" / "compiler-cases.json"

pytestmark = pytest.mark.skipif(
    not CASES_FILE.is_file(),
    reason=f"SpiceDB compiler cases not found at {CASES_FILE} (set ZANZI_SHARED_DIR)",
)

CASES: list[dict[str, Any]] = (
    json.loads(CASES_FILE.read_text(encoding="utf-8")) if CASES_FILE.is_file() else []
)

# Where SpiceDB's wording comes from Go libraries (proto validation, cel-go), the part we match.
MEANINGFUL: dict[str, str] = {
    "invalid definition name": "error in object definition someTenant/fo: name does not match regex pattern",
    "invalid relation name": "error in relation ab: name does not match regex pattern",
    "caveat missing parameter": "undeclared reference to 'anotherParam'",
    "caveat missing parameter on a different line": "undeclared reference to 'anotherParam'",
    "caveat invalid expression": "Syntax error: mismatched input ':'",
}

_POSITION = re.compile(r"^parse error in `[^`]*`, line (\d+), column (\d+): (.*)$", re.DOTALL)
_CEL_POSITION = re.compile(r"^ERROR: [^:]+:(\d+):(\d+): (.*)$")


def _options(case: dict[str, Any]) -> dict[str, Any]:
    option = case["object_prefix_option"]
    if option == "withTenantPrefix":
        return {"object_type_prefix": "sometenant"}
    if option == "nilPrefix":
        return {"require_prefix": True}
    assert option == "AllowUnprefixedObjectType()"
    return {}


def _compile(case: dict[str, Any]) -> ir.Schema:
    # The compiler cases exercise the compiler only: many name types that are never defined.
    return compile_schema(case["input"], source=case["name"], validate=False, **_options(case))


def _id(case: dict[str, Any]) -> str:
    return str(case["name"]).replace(" ", "_")


def test_the_table_has_every_case() -> None:
    assert len(CASES) == 79
    assert sum(1 for c in CASES if c["expects_success"]) == 55


@pytest.mark.parametrize("case", [c for c in CASES if c["expects_success"]], ids=_id)
def test_success_case_compiles(case: dict[str, Any]) -> None:
    schema = _compile(case)
    prefix = _options(case).get("object_type_prefix")
    for name in [*schema.definitions, *schema.caveats]:
        if prefix is not None:
            assert "/" in name, f"{name} should carry a prefix"
        assert name in case["input"] or name.split("/", 1)[1] in case["input"]


@pytest.mark.parametrize("case", [c for c in CASES if not c["expects_success"]], ids=_id)
def test_failure_case_fails_like_spicedb(case: dict[str, Any]) -> None:
    with pytest.raises(ZanziError) as raised:
        _compile(case)
    error = raised.value
    assert isinstance(error, SchemaSyntaxError | SchemaValidationError)
    expected: str = case["expected_error"]
    message = expected
    where = _POSITION.match(expected) or _CEL_POSITION.match(expected)
    if where is not None:
        line, column, message = int(where.group(1)), int(where.group(2)), where.group(3)
        assert (error.line, error.column) == (line, column), error.message
    wanted = MEANINGFUL.get(case["name"], message)
    assert wanted in error.message
    if "found name reused" in expected:
        # A compile error in SpiceDB; a validation error here (duplicates are validation rules).
        assert isinstance(error, SchemaValidationError)
    else:
        # SpiceDB reports everything else in this table as a parse error (INVALID_ARGUMENT)...
        assert isinstance(error, SchemaSyntaxError)
        # ...and where its wording is its own, ours is the same, word for word.
        if expected.startswith("parse error in") and case["name"] not in MEANINGFUL:
            assert error.message == expected


def _case(name: str) -> dict[str, Any]:
    return next(c for c in CASES if c["name"] == name)


def test_tenant_prefix_is_added_to_every_unprefixed_name() -> None:
    schema = _compile(_case("cross tenant relation"))
    relation = schema.definitions["sometenant/simple"].relations["foos"]
    assert relation.allowed == (ir.AllowedSubject("anothertenant/bars", "mehs"),)
    caveated = _compile(_case("relation with required caveat"))
    assert set(caveated.caveats) == {"sometenant/somecaveat"}
    viewer = caveated.definitions["sometenant/simple"].relations["viewer"]
    assert viewer.allowed == (ir.AllowedSubject("sometenant/user", caveat="sometenant/somecaveat"),)


def test_a_prefixed_name_keeps_its_own_prefix() -> None:
    assert list(_compile(_case("wrong tenant is not translated")).definitions) == ["someothertenant/simple"]
    assert list(_compile(_case("multiple-segment tenant")).definitions) == ["sometenant/some_team/simple"]


def test_nested_unions_collapse_like_spicedb() -> None:
    schema = _compile(_case("multiple reduction"))
    rewrite = schema.definitions["sometenant/simple"].permissions["foos"].rewrite
    assert rewrite == ir.Union(
        (
            ir.ComputedUserset("first"),
            ir.ComputedUserset("second"),
            ir.Intersection(
                (
                    ir.ComputedUserset("fourth"),
                    ir.Exclusion(ir.ComputedUserset("sixth"), ir.ComputedUserset("seventh")),
                    ir.ComputedUserset("fifth"),
                )
            ),
            ir.ComputedUserset("third"),
        )
    )
    levels = _compile(_case("multiple levels of compressed nesting"))
    assert levels.definitions["sometenant/simple"].permissions["foos"].rewrite == ir.Union(
        tuple(ir.ComputedUserset(n) for n in ("first", "second", "third", "fourth"))
    )


def test_exclusions_stay_binary_and_left_associative() -> None:
    schema = _compile(_case("exclusion permission with multiple branches"))
    first, second, third, fourth = (ir.ComputedUserset(n) for n in ("first", "second", "third", "fourth"))
    assert schema.definitions["sometenant/simple"].permissions["foos"].rewrite == ir.Exclusion(
        ir.Exclusion(ir.Exclusion(first, second), third), fourth
    )


def test_expiration_without_use_is_a_caveat_named_expiration() -> None:
    without = _compile(_case("relation with expiration caveat"))
    viewer = without.definitions["sometenant/simple"].relations["viewer"]
    assert viewer.allowed == (ir.AllowedSubject("sometenant/user", caveat="sometenant/expiration"),)
    with_use = _compile(_case("relation with expiration trait and caveat"))
    assert with_use.uses == frozenset({"expiration"})
    viewer = with_use.definitions["sometenant/simple"].relations["viewer"]
    assert viewer.allowed == (
        ir.AllowedSubject("sometenant/user", caveat="sometenant/somecaveat", expiration=True),
    )


def test_self_is_a_relation_name_unless_use_self() -> None:
    plain = _compile(_case("self is allowed when used in union and interpreted as relation name"))
    rewrite = plain.definitions["sometenant/expressioned"].permissions["foos"].rewrite
    assert rewrite == ir.Union((ir.Arrow("arel", "brel"), ir.ComputedUserset("self")))
    flagged = _compile(_case("self with use self is allowed when used in permission expression"))
    assert flagged.definitions["sometenant/expressioned"].permissions["foos"].rewrite == ir.SelfRef()
    assert flagged.uses == frozenset({"self"})


def test_arrow_functions() -> None:
    any_arrow = _compile(_case("any arrow")).definitions["sometenant/simple"].permissions["foo"]
    all_arrow = _compile(_case("all arrow")).definitions["sometenant/simple"].permissions["foo"]
    assert any_arrow.rewrite == ir.Arrow("bar", "baz", "any")
    assert all_arrow.rewrite == ir.Arrow("bar", "baz", "all")


def test_doc_comments_are_kept() -> None:
    schema = _compile(_case("doc comments"))
    assert schema.definitions["sometenant/user"].comment == "/**\n* user is a user\n*/"
    single = schema.definitions["sometenant/single"]
    assert single.comment == "/**\n* single is a thing\n*/"
    assert single.permissions["first"].comment == "/**\n* some permission\n*/"


def test_caveats_keep_their_parameters_and_expression() -> None:
    caveat = _compile(_case("long caveat valid")).caveats["sometenant/foo"]
    assert caveat.parameters == (
        ir.CaveatParameter("someParam", "int"),
        ir.CaveatParameter("anotherParam", "string"),
        ir.CaveatParameter("thirdParam", "list<int>"),
    )
    assert caveat.expression.startswith("someParam == 42 && someParam != 43")
    assert caveat.expression.endswith("42 in thirdParam")
