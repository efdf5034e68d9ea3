"""Sets of subjects of one type, with a wildcard and conditional membership.

A :class:`SubjectSet` stands for the function ``member(x)`` =
``concrete.get(x, False) OR (wildcard AND NOT excluded.get(x, False))``, where every value is a
condition (``True``, ``False`` or a caveat expression). Union, intersection and exclusion are
computed exactly on that function and then put back into a canonical form, so that
``user:* - {alice}`` and ``{alice, bob} & user:*`` come out as SpiceDB reports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from zanzi.engine.conditions import Cond, both, either, negate

__all__ = ["SubjectSet"]


class SubjectSet:
    """Subjects (by id) of one ``type[#relation]``, possibly with a wildcard."""

    __slots__ = ("concrete", "excluded", "wildcard")

    def __init__(
        self,
        concrete: dict[str, Cond] | None = None,
        wildcard: Cond = False,
        excluded: dict[str, Cond] | None = None,
    ) -> None:
        self.concrete: dict[str, Cond] = concrete if concrete is not None else {}
        self.wildcard: Cond = wildcard
        self.excluded: dict[str, Cond] = excluded if excluded is not None else {}

    def __repr__(self) -> str:
        return f"SubjectSet({self.concrete!r}, wildcard={self.wildcard!r}, excluded={self.excluded!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SubjectSet)
            and self.concrete == other.concrete
            and self.wildcard == other.wildcard
            and self.excluded == other.excluded
        )

    def is_empty(self) -> bool:
        return not self.concrete and self.wildcard is False

    def member(self, subject_id: str) -> Cond:
        """The condition under which ``subject_id`` belongs to the set."""
        return either(
            self.concrete.get(subject_id, False),
            both(self.wildcard, negate(self.excluded.get(subject_id, False))),
        )

    def _keys(self) -> Iterator[str]:
        yield from self.concrete
        yield from self.excluded

    # -- building -----------------------------------------------------------------------------

    def add(self, subject_id: str, cond: Cond = True) -> None:
        """Union in one subject (``"*"`` adds to the wildcard)."""
        if cond is False:
            return
        if subject_id == "*":
            if self.wildcard is False:
                self.wildcard = cond
                return
            self.update(SubjectSet(wildcard=cond))
            return
        if self.wildcard is False:
            self.concrete[subject_id] = either(self.concrete.get(subject_id, False), cond)
            return
        self.update(SubjectSet({subject_id: cond}))

    def update(self, other: SubjectSet) -> None:
        """In-place union."""
        if other.is_empty():
            return
        if self.wildcard is False and other.wildcard is False:
            for k, c in other.concrete.items():
                self.concrete[k] = either(self.concrete.get(k, False), c)
            return
        merged = _combine(self, other, either, either(self.wildcard, other.wildcard))
        self.concrete, self.wildcard, self.excluded = merged.concrete, merged.wildcard, merged.excluded

    def with_condition(self, cond: Cond) -> SubjectSet:
        """Every membership AND ``cond`` (a caveat on the edge that led here)."""
        if cond is True:
            return self
        if cond is False:
            return SubjectSet()
        return SubjectSet(
            {k: both(c, cond) for k, c in self.concrete.items()},
            both(self.wildcard, cond),
            dict(self.excluded),
        )

    def copy(self) -> SubjectSet:
        return SubjectSet(dict(self.concrete), self.wildcard, dict(self.excluded))

    # -- algebra ------------------------------------------------------------------------------

    @staticmethod
    def union_all(sets: Iterable[SubjectSet]) -> SubjectSet:
        out = SubjectSet()
        for s in sets:
            out.update(s)
        return out

    def intersect(self, other: SubjectSet) -> SubjectSet:
        return _combine(self, other, both, both(self.wildcard, other.wildcard))

    def subtract(self, other: SubjectSet) -> SubjectSet:
        return _combine(
            self, other, lambda a, b: both(a, negate(b)), both(self.wildcard, negate(other.wildcard))
        )


def _combine(a: SubjectSet, b: SubjectSet, op: object, wildcard: Cond) -> SubjectSet:
    """Apply ``op`` pointwise on every id either set mentions, with ``wildcard`` as the value of
    every unmentioned id, then canonicalise."""
    fn = op  # (Cond, Cond) -> Cond
    assert callable(fn)
    keys = dict.fromkeys([*a._keys(), *b._keys()])
    concrete: dict[str, Cond] = {}
    excluded: dict[str, Cond] = {}
    for k in keys:
        value: Cond = fn(a.member(k), b.member(k))
        if wildcard is False:
            if value is not False:
                concrete[k] = value
        elif wildcard is True:
            if value is True:
                if k in a.concrete or k in b.concrete:
                    concrete[k] = True
            elif value is False:
                excluded[k] = True
            else:
                excluded[k] = negate(value)
        else:
            # Conditional wildcard: state the id's exact membership and take it out of the wildcard.
            if value is not False:
                concrete[k] = value
            excluded[k] = True
    return SubjectSet(concrete, wildcard, excluded)
