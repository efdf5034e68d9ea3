"""Property: a valid schema printed and compiled again is the same schema, and printing is stable.

Schemas are generated as IR: definitions (some with ``org/`` prefixes), relations allowing direct
types, wildcards, ``type#relation`` and ``type#permission`` subjects, caveats and expiration;
permissions nesting ``+``, ``&``, ``-``, arrows, ``.all()``, ``nil`` and ``self``. They are built
valid by construction (no unknown names, no arrow over a wildcard, permissions refer only to
earlier ones), so the compiler's validation passes too.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zanzi.schema import compile_schema, ir, print_schema

RESERVED = {
    "definition", "caveat", "relation", "permission", "nil", "with", "use", "expiration", "and",
    "self", "partial", "import", "typechecking", "any", "all", "true", "false", "null", "in",
}  # fmt: skip

WORDS = st.from_regex(r"[a-z][a-z0-9_]{1,6}[a-z0-9]", fullmatch=True).filter(lambda w: w not in RESERVED)
COMMENTS = st.one_of(
    st.just(""),
    WORDS.map(lambda w: f"// {w}"),
    WORDS.map(lambda w: f"/** {w} */"),
    st.tuples(WORDS, WORDS).map(lambda ws: f"/**\n* {ws[0]}\n* {ws[1]}\n*/"),
)
CAVEAT_PARAMS = {
    "int": "{} == 1",
    "string": "{} == 'x'",
    "bool": "{}",
    "list<int>": "1 in {}",
    "map<any>": "{}.k == 2",
}


@dataclass
class _Rel:
    name: str
    tier: int  # 0: direct types only, 1: may allow wildcards, 2: may allow usersets of tier-0 relations
    allowed: list[ir.AllowedSubject]


def _rewrite(draw: st.DrawFn, refs: list[str], tuplesets: list[str], words: list[str], use_self: bool,
             depth: int, parent: type | None) -> ir.Rewrite:  # fmt: skip
    leaves = (
        ["ref"] * 4 + (["arrow", "arrow_all"] if tuplesets else []) + ["nil"] + (["self"] if use_self else [])
    )
    kinds = leaves + (["union", "intersection", "exclusion"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "ref":
        return ir.ComputedUserset(draw(st.sampled_from(refs)))
    if kind in ("arrow", "arrow_all"):
        return ir.Arrow(
            draw(st.sampled_from(tuplesets)),
            draw(st.sampled_from(words)),
            "all" if kind == "arrow_all" else "any",
        )
    if kind == "nil":
        return ir.Nil()
    if kind == "self":
        return ir.SelfRef()
    if kind == "exclusion":
        return ir.Exclusion(
            _rewrite(draw, refs, tuplesets, words, use_self, depth - 1, ir.Exclusion),
            _rewrite(draw, refs, tuplesets, words, use_self, depth - 1, ir.Exclusion),
        )
    node_type = ir.Union if kind == "union" else ir.Intersection
    if parent is node_type:  # the compiler flattens `a + (b + c)`; generate the flat form
        return ir.ComputedUserset(draw(st.sampled_from(refs)))
    count = draw(st.integers(2, 3))
    children = tuple(
        _rewrite(draw, refs, tuplesets, words, use_self, depth - 1, node_type) for _ in range(count)
    )
    return node_type(children)


@st.composite
def schemas(draw: st.DrawFn) -> ir.Schema:
    use_expiration = draw(st.booleans())
    use_self = draw(st.booleans())
    n_defs = draw(st.integers(1, 4))
    n_caveats = draw(st.integers(0, 2))
    names = draw(st.lists(WORDS, min_size=n_defs + n_caveats, max_size=n_defs + n_caveats, unique=True))
    prefix = draw(WORDS)
    def_names = [f"{prefix}/{n}" if draw(st.booleans()) else n for n in names[:n_defs]]
    caveats: dict[str, ir.CaveatDefinition] = {}
    for name in names[n_defs:]:
        param_names = draw(st.lists(WORDS, min_size=1, max_size=3, unique=True))
        types = [draw(st.sampled_from(sorted(CAVEAT_PARAMS))) for _ in param_names]
        expression = " && ".join(CAVEAT_PARAMS[t].format(p) for p, t in zip(param_names, types, strict=True))
        params = tuple(ir.CaveatParameter(p, t) for p, t in zip(param_names, types, strict=True))
        caveats[name] = ir.CaveatDefinition(name, params, expression, draw(COMMENTS))

    # Members: names first (so usersets can point anywhere), allowed types second.
    rels: dict[str, list[_Rel]] = {}
    perm_names: dict[str, list[str]] = {}
    for d in def_names:
        members = draw(st.lists(WORDS, min_size=1, max_size=7, unique=True))
        n_rels = draw(st.integers(1, len(members)))
        rels[d] = [_Rel(n, draw(st.integers(0, 2)), []) for n in members[:n_rels]]
        perm_names[d] = members[n_rels:]
    for d in def_names:
        for rel in rels[d]:
            seen: set[str] = set()
            for _ in range(draw(st.integers(1, 3))):
                target = draw(st.sampled_from(def_names))
                relation: str | None = None
                wildcard = False
                shape = draw(st.sampled_from(["direct", "wildcard", "userset"]))
                if shape == "wildcard" and rel.tier == 1:
                    wildcard = True
                elif shape == "userset" and rel.tier == 2:
                    options = [r.name for r in rels[target] if r.tier == 0] + perm_names[target]
                    relation = draw(st.sampled_from(options)) if options else None
                caveat = draw(st.sampled_from([None, *caveats])) if caveats else None
                expiration = use_expiration and draw(st.booleans())
                allowed = ir.AllowedSubject(target, relation, wildcard, caveat, expiration)
                if str(allowed) not in seen:
                    seen.add(str(allowed))
                    rel.allowed.append(allowed)

    words = [w for d in def_names for w in [*(r.name for r in rels[d]), *perm_names[d]]]
    definitions: dict[str, ir.Definition] = {}
    for d in def_names:
        relations = {r.name: ir.Relation(r.name, tuple(r.allowed), draw(COMMENTS)) for r in rels[d]}
        tuplesets = [r.name for r in rels[d] if r.tier != 1]
        permissions: dict[str, ir.Permission] = {}
        for name in perm_names[d]:
            refs = [*relations, *permissions]  # only earlier permissions: no cycles
            rewrite = _rewrite(draw, refs, tuplesets, words, use_self, draw(st.integers(0, 3)), None)
            annotation = tuple(draw(st.lists(st.sampled_from(def_names), max_size=2, unique=True)))
            permissions[name] = ir.Permission(name, rewrite, draw(COMMENTS), annotation)
        definitions[d] = ir.Definition(d, relations, permissions, draw(COMMENTS))

    uses = frozenset({"expiration"} if use_expiration else set()) | frozenset({"self"} if use_self else set())
    return ir.Schema(definitions, caveats, uses)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_print_then_compile_gives_the_same_schema(schema: ir.Schema) -> None:
    text = print_schema(schema)
    compiled = compile_schema(text)
    assert compiled == schema, text
    assert print_schema(compiled) == text


@settings(max_examples=100, deadline=None)
@given(schemas(), WORDS)
def test_round_trip_with_an_object_type_prefix(schema: ir.Schema, prefix: str) -> None:
    """Printing a prefixed compile and compiling it again (no prefix) changes nothing more."""
    compiled = compile_schema(print_schema(schema), object_type_prefix=prefix)
    assert all("/" in name for name in [*compiled.definitions, *compiled.caveats])
    again = compile_schema(print_schema(compiled))
    assert again == compiled
