"""Caveats and expiring relationships, end to end through the service, over every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from zanzi import errors
from zanzi.api.service import Service
from zanzi.model import Consistency, Permissionship
from zanzi.schema import compile_schema
from zanzi.schema.caveats import compile_caveat, convert_context, parse_caveat_type

HAS, NO, COND = (
    Permissionship.HAS_PERMISSION,
    Permissionship.NO_PERMISSION,
    Permissionship.CONDITIONAL_PERMISSION,
)

SCHEMA = """
use expiration

definition user {}

caveat min_level(level int, required int) {
    level >= required
}

caveat on_network(ip ipaddress, cidr string) {
    ip.in_cidr(cidr)
}

caveat before(now timestamp, deadline timestamp) {
    now < deadline
}

definition team {
    relation member: user | user with min_level
}

definition folder {
    relation viewer: user | user with on_network | team#member
    permission view = viewer
}

definition document {
    relation folder: folder | folder with before
    relation viewer: user | user with min_level | user with expiration
    relation approver: user | user with on_network
    relation banned: user | user with min_level
    permission view = viewer + folder->view
    permission approve = viewer & approver
    permission safe_view = viewer - banned
}
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'cav.db'}"
    with Service.open(url) as service:
        service.write_schema(SCHEMA)
        yield service


def perm(db: Service, resource: str, permission: str, subject: str, **context: Any) -> Permissionship:
    return db.check(resource, permission, subject, context=context or None).permissionship


def test_missing_context_is_conditional_with_the_missing_names(db: Service) -> None:
    db.write_relationships(['document:d#viewer@user:amy[min_level:{"required":3}]'])
    result = db.check("document:d", "view", "user:amy")
    assert result.permissionship is COND
    assert result.missing_context == ("level",)
    assert perm(db, "document:d", "view", "user:amy", level=5) is HAS
    assert perm(db, "document:d", "view", "user:amy", level=1) is NO


def test_relationship_context_wins_over_request_context(db: Service) -> None:
    db.write_relationships(['document:d#viewer@user:amy[min_level:{"required":3}]'])
    # The request says required=0, but the stored required=3 wins.
    assert perm(db, "document:d", "view", "user:amy", level=2, required=0) is NO
    db.write_relationships(["document:e#viewer@user:amy[min_level]"])
    assert perm(db, "document:e", "view", "user:amy", level=2, required=0) is HAS
    assert db.check("document:e", "view", "user:amy").missing_context == ("level", "required")


def test_union_with_an_uncaveated_branch_needs_no_context(db: Service) -> None:
    db.write_relationships(
        ["document:d#viewer@user:amy[min_level]", "document:d#folder@folder:f", "folder:f#viewer@user:amy"]
    )
    assert perm(db, "document:d", "view", "user:amy") is HAS


def test_intersection_and_exclusion_with_caveated_branches(db: Service) -> None:
    db.write_relationships(
        [
            "document:d#viewer@user:amy",
            'document:d#approver@user:amy[on_network:{"cidr":"10.0.0.0/8"}]',
            'document:d#banned@user:amy[min_level:{"required":9}]',
        ]
    )
    approve = db.check("document:d", "approve", "user:amy")
    assert approve.permissionship is COND and approve.missing_context == ("ip",)
    assert perm(db, "document:d", "approve", "user:amy", ip="10.1.2.3") is HAS
    assert perm(db, "document:d", "approve", "user:amy", ip="192.168.0.1") is NO
    # An exclusion whose subtracted branch is caveated is conditional, never simply allowed.
    assert perm(db, "document:d", "safe_view", "user:amy") is COND
    assert perm(db, "document:d", "safe_view", "user:amy", level=10) is NO
    assert perm(db, "document:d", "safe_view", "user:amy", level=1) is HAS


def test_caveats_through_arrows_and_usersets(db: Service) -> None:
    db.write_relationships(
        [
            'document:d#folder@folder:f[before:{"deadline":"2031-01-01T00:00:00Z"}]',
            "folder:f#viewer@team:t#member",
            'team:t#member@user:amy[min_level:{"required":2}]',
        ]
    )
    both = db.check("document:d", "view", "user:amy")
    assert both.permissionship is COND
    assert set(both.missing_context) == {"now", "level"}
    assert perm(db, "document:d", "view", "user:amy", now="2030-01-01T00:00:00Z", level=3) is HAS
    assert perm(db, "document:d", "view", "user:amy", now="2032-01-01T00:00:00Z", level=3) is NO
    assert perm(db, "document:d", "view", "user:amy", now="2030-01-01T00:00:00Z", level=1) is NO


def test_lookups_return_conditional_results(db: Service) -> None:
    db.write_relationships(
        ["document:a#viewer@user:amy", 'document:b#viewer@user:amy[min_level:{"required":3}]']
    )
    found = {
        r.resource_id: (r.permissionship, r.missing_context)
        for r in db.lookup_resources("document", "view", "user:amy")
    }
    assert found == {"a": (HAS, ()), "b": (COND, ("level",))}
    with_context = {
        r.resource_id for r in db.lookup_resources("document", "view", "user:amy", context={"level": 1})
    }
    assert with_context == {"a"}
    db.write_relationships(['document:a#viewer@user:bob[min_level:{"required":3}]'])
    subjects = {str(r.subject): r.permissionship for r in db.lookup_subjects("document:a", "view", "user")}
    assert subjects == {"user:amy": HAS, "user:bob": COND}


def test_expand_shows_caveats(db: Service) -> None:
    db.write_relationships(['document:d#viewer@user:amy[min_level:{"required":3}]'])
    leaf = db.expand("document:d", "viewer").tree
    assert [str(s) for s in leaf.subjects] == ['user:amy[min_level:{"required":3}]']


def test_reads_return_caveated_relationships_as_written(db: Service) -> None:
    text = 'document:d#viewer@user:amy[min_level:{"required":3}]'
    db.write_relationships([text])
    assert [str(r) for r in db.read_relationships("document:d#viewer")] == [text]
    assert [str(r) for r in db.export_relationships()] == [text]


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("document:d#viewer@user:amy[on_network]", errors.RelationshipNotAllowed),  # not allowed there
        ("document:d#viewer@user:amy[nosuch]", errors.UnknownCaveat),
        ('document:d#viewer@user:amy[min_level:{"required":"high"}]', errors.InvalidContext),
        ('document:d#approver@user:amy[on_network:{"ip":"not-an-ip"}]', errors.InvalidContext),
        ("document:d#approver@user:amy[expiration:2031-01-01T00:00:00Z]", errors.RelationshipNotAllowed),
    ],
)
def test_bad_caveated_relationships_are_refused(db: Service, rel: str, kind: type) -> None:
    before = [str(r) for r in db.export_relationships()]
    with pytest.raises(kind):
        db.write_relationships(["document:d#viewer@user:ok", rel])
    assert [str(r) for r in db.export_relationships()] == before


def test_bad_request_context_is_a_clear_error(db: Service) -> None:
    db.write_relationships(['document:d#viewer@user:amy[min_level:{"required":3}]'])
    with pytest.raises(errors.InvalidContext, match="level"):
        db.check("document:d", "view", "user:amy", context={"level": "high"})
    with pytest.raises(errors.InvalidContext, match="maximum of 4096"):
        db.check("document:d", "view", "user:amy", context={"level": 1, "pad": "x" * 5000})
    with pytest.raises(errors.InvalidContext, match="4096"):
        db.write_relationships(
            [f'document:d#viewer@user:big[min_level:{{"required":1,"pad":"{"x" * 5000}"}}]']
        )
    assert errors.grpc_status_name(errors.InvalidContext("x")) == "INVALID_ARGUMENT"


def test_expiration_at_the_boundary_instant(tmp_path: Path) -> None:
    clock = Clock()
    with Service.open(f"sqlite:///{tmp_path / 'exp.db'}", clock=clock) as db:
        db.write_schema(SCHEMA)
        db.write_relationships(["document:d#viewer@user:amy[expiration:2030-06-01T12:00:10Z]"])
        clock.now = datetime(2030, 6, 1, 12, 0, 9, 999999, tzinfo=UTC)
        assert db.check("document:d", "view", "user:amy").allowed
        assert [str(r) for r in db.read_relationships("document:d")] == [
            "document:d#viewer@user:amy[expiration:2030-06-01T12:00:10Z]"
        ]
        clock.now = datetime(2030, 6, 1, 12, 0, 10, tzinfo=UTC)  # the expiry instant itself
        assert not db.check("document:d", "view", "user:amy").allowed
        assert list(db.read_relationships("document:d")) == []
        assert list(db.lookup_resources("document", "view", "user:amy")) == []
        assert list(db.lookup_subjects("document:d", "view", "user")) == []
        # Garbage collection removes it once it is older than the window.
        clock.now += timedelta(days=2)
        assert db.datastore.garbage_collect(now=clock.now) >= 1


def test_expiration_needs_use_expiration() -> None:
    with pytest.raises(errors.ZanziError, match="expiration"):
        compile_schema("definition user {}\ndefinition doc {\n  relation viewer: user with expiration\n}")


# -- the CEL layer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ptype", "expression", "value", "expected"),
    [
        ("int", "p == 42", 42, True),
        ("int", "p == 42", 42.0, True),  # JSON numbers may arrive as doubles
        ("uint", "p > 1u", 5, True),
        ("bool", "p", False, False),
        ("string", "p.startsWith('ab')", "abc", True),
        ("double", "p < 1.5", 1.25, True),
        ("bytes", "size(p) == 3", "abc", True),
        ("duration", "p > duration('1h')", "1h30m", True),
        ("timestamp", "p < timestamp('2030-01-01T00:00:00Z')", "2029-12-31T23:59:59Z", True),
        ("ipaddress", "p.in_cidr('10.0.0.0/8')", "10.9.8.7", True),
        ("ipaddress", "p.in_cidr('10.0.0.0/8')", "11.0.0.1", False),
        ("list<int>", "p.all(i, i >= 42)", [42, 43], True),
        ("list<string>", "'x' in p", ["y"], False),
        ("map<any>", "p.foo == 42 && p.bar < 56", {"foo": 42, "bar": 55}, True),
        ("map<any>", "p.isSubtreeOf({'a': 1, 'b': 2})", {"a": 1}, True),
        ("any", "p == 'hello'", "hello", True),
    ],
)
def test_every_parameter_type_evaluates(ptype: str, expression: str, value: Any, expected: bool) -> None:
    schema = compile_schema(f"caveat cav(p {ptype}) {{ {expression} }}")
    program = compile_caveat(schema.caveats["cav"])
    assert program.evaluate(convert_context(program.types, {"p": value})) is expected


@pytest.mark.parametrize(
    ("ptype", "value"),
    [
        ("int", "42"),
        ("int", 4.5),
        ("int", True),
        ("uint", -1),
        ("bool", 1),
        ("string", 5),
        ("duration", "soon"),
        ("timestamp", "yesterday"),
        ("ipaddress", "300.1.1.1"),
        ("list<int>", [1, "x"]),
        ("map<int>", {"a": "b"}),
    ],
)
def test_wrong_context_types_are_refused(ptype: str, value: Any) -> None:
    with pytest.raises(errors.InvalidContext, match="type error for parameter `p"):
        convert_context({"p": parse_caveat_type(ptype)}, {"p": value})


def test_partial_evaluation_decides_without_a_missing_parameter_when_it_can() -> None:
    schema = compile_schema("caveat cav(a int, b int) { a == 1 || b == 2 }")
    program = compile_caveat(schema.caveats["cav"])
    assert program.evaluate({"a": 1}) is True
    assert program.evaluate({"a": 3}) == ("b",)
    assert program.evaluate({}) == ("a", "b")


def test_caveated_check_through_consistency_token(db: Service) -> None:
    token = db.write_relationships(['document:d#viewer@user:amy[min_level:{"required":3}]'])
    result = db.check(
        "document:d",
        "view",
        "user:amy",
        consistency=Consistency.at_exact_snapshot(token),
        context={"level": 3},
    )
    assert result.allowed and result.token == token
