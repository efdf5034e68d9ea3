"""The subject-set algebra behind LookupSubjects: wildcards, exclusions and conditions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zanzi.engine.conditions import CaveatCall, Not
from zanzi.engine.subjectset import SubjectSet

IDS = ["a", "b", "c", "d"]


def members(s: SubjectSet, universe: list[str]) -> set[str]:
    return {x for x in universe if s.member(x) is True}


def test_wildcard_minus_subject_lists_the_exclusion() -> None:
    s = SubjectSet(wildcard=True).subtract(SubjectSet({"alice": True}))
    assert s.wildcard is True
    assert s.excluded == {"alice": True}
    assert s.concrete == {}


def test_wildcard_union_concrete_keeps_both() -> None:
    s = SubjectSet(wildcard=True)
    s.update(SubjectSet({"alice": True}))
    assert s.wildcard is True and s.concrete == {"alice": True} and s.excluded == {}


def test_concrete_intersect_wildcard_is_concrete() -> None:
    s = SubjectSet({"alice": True, "bob": True}).intersect(SubjectSet(wildcard=True, excluded={"bob": True}))
    assert s.wildcard is False
    assert s.concrete == {"alice": True}


def test_concrete_minus_wildcard_is_empty() -> None:
    assert SubjectSet({"a": True}).subtract(SubjectSet(wildcard=True)).is_empty()


def test_double_exclusion_brings_subject_back_as_concrete() -> None:
    # user:* - (user:* - {bob}) == {bob}
    inner = SubjectSet(wildcard=True).subtract(SubjectSet({"bob": True}))
    s = SubjectSet(wildcard=True).subtract(inner)
    assert s.wildcard is False
    assert members(s, ["bob", "carol"]) == {"bob"}


def test_caveated_exclusion_keeps_condition() -> None:
    cav = CaveatCall.of("c", {})
    s = SubjectSet(wildcard=True).subtract(SubjectSet({"bob": cav}))
    assert s.excluded == {"bob": cav}
    assert s.member("bob") == Not(cav)
    assert s.member("alice") is True


sets = st.builds(
    lambda conc, wild, exc: SubjectSet(
        dict.fromkeys(conc, True), wild, dict.fromkeys(exc, True) if wild else {}
    ),
    st.sets(st.sampled_from(IDS)),
    st.booleans(),
    st.sets(st.sampled_from(IDS)),
)


@given(sets, sets)
def test_algebra_matches_pointwise_set_semantics(a: SubjectSet, b: SubjectSet) -> None:
    universe = [*IDS, "zz"]
    ma, mb = members(a, universe), members(b, universe)
    assert members(a.intersect(b), universe) == ma & mb
    assert members(a.subtract(b), universe) == ma - mb
    u = a.copy()
    u.update(b)
    assert members(u, universe) == ma | mb
