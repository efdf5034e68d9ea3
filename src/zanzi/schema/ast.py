"""The parse tree of a schema file: frozen dataclasses, each with the :class:`Span` it came from.

The shape follows SpiceDB's parse tree (``pkg/schemadsl/dslshape``): a node that failed to parse
keeps what it got (missing names are ``None``) plus the :class:`ErrorNode` s raised inside it, so
several problems can be reported at once. Every node also keeps the comments that stood right
before its first token. :func:`dump` prints a tree in SpiceDB's test format (``*.zed.expected``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from zanzi.schema.tokens import Span

__all__ = [
    "ArrowExpr",
    "BinaryExpr",
    "CaveatDefinition",
    "CaveatExpression",
    "CaveatParameter",
    "CaveatRef",
    "CaveatTypeRef",
    "Definition",
    "ErrorNode",
    "Expr",
    "File",
    "Identifier",
    "Import",
    "Member",
    "NilExpr",
    "Node",
    "Partial",
    "PartialRef",
    "Permission",
    "Relation",
    "SelfExpr",
    "SpecificTypeRef",
    "TopLevel",
    "TraitRef",
    "TypeAnnotation",
    "TypeReference",
    "UseFlag",
    "dump",
]

Errors: TypeAlias = "tuple[ErrorNode, ...]"
Comments: TypeAlias = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ErrorNode:
    """A parse error. ``source`` is the text of the token the parser stopped at (if any);
    ``detail`` is the lexer's explanation when that token was itself an error. ``past_end`` is set
    when the parser had already read past the end of the input (SpiceDB then reports offset 0)."""

    span: Span
    message: str
    source: str | None = None
    detail: str = ""
    comments: Comments = ()
    past_end: bool = False


# -- permission expressions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identifier:
    """A relation or permission name inside an expression (or a type in an annotation)."""

    span: Span
    name: str
    comments: Comments = ()


@dataclass(frozen=True, slots=True)
class NilExpr:
    """``nil``"""

    span: Span
    comments: Comments = ()


@dataclass(frozen=True, slots=True)
class SelfExpr:
    """``self`` (with ``use self``)"""

    span: Span
    comments: Comments = ()


@dataclass(frozen=True, slots=True)
class BinaryExpr:
    """``left + right``, ``left & right`` or ``left - right`` (always binary in the parse tree)."""

    span: Span
    op: Literal["union", "intersection", "exclusion"]
    left: Expr
    right: Expr
    comments: Comments = ()


@dataclass(frozen=True, slots=True)
class ArrowExpr:
    """``left->right`` (``function`` is ``None``) or ``left.any(right)`` / ``left.all(right)``."""

    span: Span
    left: Expr
    right: Expr
    function: str | None = None
    comments: Comments = ()


Expr: TypeAlias = "Identifier | NilExpr | SelfExpr | BinaryExpr | ArrowExpr | ErrorNode"


# -- definitions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaveatRef:
    """``with <caveat>`` on an allowed type."""

    span: Span
    name: str | None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class TraitRef:
    """``with expiration`` (or ``and expiration``) on an allowed type."""

    span: Span
    name: str | None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class SpecificTypeRef:
    """One allowed type: ``user``, ``group#member``, ``group#...``, ``user:*``, plus traits."""

    span: Span
    type_name: str | None
    relation: str | None = None
    wildcard: bool = False
    caveat: CaveatRef | None = None
    trait: TraitRef | None = None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class TypeReference:
    """``type | type | ...`` after ``relation name:``."""

    span: Span
    types: tuple[SpecificTypeRef, ...]
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class Relation:
    span: Span
    name: str | None
    types: TypeReference | None = None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class TypeAnnotation:
    """``: user | team`` between a permission's name and its ``=``."""

    span: Span
    types: tuple[Identifier, ...]
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class Permission:
    span: Span
    name: str | None
    expression: Expr | None = None
    annotation: TypeAnnotation | None = None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class PartialRef:
    """``...partial_name`` inside a definition or partial."""

    span: Span
    name: str | None
    comments: Comments = ()
    errors: Errors = ()


Member: TypeAlias = "Relation | Permission | PartialRef"


@dataclass(frozen=True, slots=True)
class Definition:
    span: Span
    name: str | None
    members: tuple[Member, ...] = ()
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class Partial:
    """``partial name { ... }`` (with ``use partial``): members spliced in by ``...name``."""

    span: Span
    name: str | None
    members: tuple[Member, ...] = ()
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class CaveatTypeRef:
    """A caveat parameter type: ``int``, ``list<string>``, ``map<any>``..."""

    span: Span
    name: str | None
    children: tuple[CaveatTypeRef, ...] = ()
    comments: Comments = ()
    errors: Errors = ()

    def __str__(self) -> str:
        if not self.children:
            return self.name or ""
        return f"{self.name}<{', '.join(str(c) for c in self.children)}>"


@dataclass(frozen=True, slots=True)
class CaveatParameter:
    span: Span
    name: str | None
    type: CaveatTypeRef | None = None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class CaveatExpression:
    """The CEL body of a caveat, as raw source text (from its first token to its last)."""

    span: Span
    text: str
    comments: Comments = ()


@dataclass(frozen=True, slots=True)
class CaveatDefinition:
    span: Span
    name: str | None
    parameters: tuple[CaveatParameter, ...] = ()
    expression: CaveatExpression | None = None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class UseFlag:
    """``use expiration``; ``name`` is ``None`` when the flag is unknown."""

    span: Span
    name: str | None
    comments: Comments = ()
    errors: Errors = ()


@dataclass(frozen=True, slots=True)
class Import:
    """``import "path.zed"`` (with ``use import``); ``path`` is without its quotes."""

    span: Span
    path: str | None
    comments: Comments = ()
    errors: Errors = ()


TopLevel: TypeAlias = "Definition | CaveatDefinition | Partial | UseFlag | Import"


@dataclass(frozen=True, slots=True)
class File:
    """A whole schema file. ``diagnostics`` lists every error node of the tree in the order the
    parser found them (the first is the one to report)."""

    span: Span
    source: str
    items: tuple[TopLevel, ...] = ()
    comments: Comments = ()
    errors: Errors = ()
    diagnostics: Errors = ()

    @property
    def ok(self) -> bool:
        return not self.diagnostics


Node: TypeAlias = (
    "File | TopLevel | Member | Expr | TypeReference | SpecificTypeRef | CaveatRef | TraitRef"
    " | TypeAnnotation | CaveatParameter | CaveatTypeRef | CaveatExpression"
)


# -- dumping in SpiceDB's test format ---------------------------------------------------------

_BINARY_KIND = {
    "union": "NodeTypeUnionExpression",
    "intersection": "NodeTypeIntersectExpression",
    "exclusion": "NodeTypeExclusionExpression",
}

_Props = dict[str, str]
_Preds = dict[str, list[object]]


def _describe(node: object) -> tuple[str, _Props, _Preds]:
    """Node kind, properties and child predicates of a node, as SpiceDB names them."""
    props: _Props = {}
    preds: _Preds = {}
    children: list[object] = [*getattr(node, "comments", ())]

    def name(key: str, value: str | None) -> None:
        if value is not None:
            props[key] = value

    kind: str
    if isinstance(node, File):
        kind = "NodeTypeFile"
        children += [*node.items, *node.errors]
    elif isinstance(node, Definition | Partial):
        kind = "NodeTypeDefinition" if isinstance(node, Definition) else "NodeTypePartial"
        name("definition-name" if isinstance(node, Definition) else "partial-name", node.name)
        children += [*node.members, *node.errors]
    elif isinstance(node, Relation):
        kind = "NodeTypeRelation"
        name("relation-name", node.name)
        if node.types is not None:
            preds["allowed-types"] = [node.types]
        children += node.errors
    elif isinstance(node, TypeReference):
        kind = "NodeTypeTypeReference"
        if node.types:
            preds["type-ref-type"] = list(node.types)
        children += node.errors
    elif isinstance(node, SpecificTypeRef):
        kind = "NodeTypeSpecificTypeReference"
        name("type-name", node.type_name)
        name("relation-name", node.relation)
        if node.wildcard:
            props["type-wildcard"] = "true"
        if node.caveat is not None:
            preds["caveat"] = [node.caveat]
        if node.trait is not None:
            preds["trait"] = [node.trait]
        children += node.errors
    elif isinstance(node, CaveatRef):
        kind = "NodeTypeCaveatReference"
        name("caveat-name", node.name)
        children += node.errors
    elif isinstance(node, TraitRef):
        kind = "NodeTypeTraitReference"
        name("trait-name", node.name)
        children += node.errors
    elif isinstance(node, Permission):
        kind = "NodeTypePermission"
        name("relation-name", node.name)
        if node.expression is not None:
            preds["compute-expression"] = [node.expression]
        if node.annotation is not None:
            preds["type-annotations"] = [node.annotation]
        children += node.errors
    elif isinstance(node, TypeAnnotation):
        kind = "NodeTypeTypeAnnotation"
        if node.types:
            preds["annotation-types"] = list(node.types)
        children += node.errors
    elif isinstance(node, PartialRef):
        kind = "NodeTypePartialReference"
        name("partial-reference-name", node.name)
        children += node.errors
    elif isinstance(node, Identifier):
        kind = "NodeTypeIdentifier"
        props["identifier-value"] = node.name
    elif isinstance(node, NilExpr):
        kind = "NodeTypeNilExpression"
    elif isinstance(node, SelfExpr):
        kind = "NodeTypeSelfExpression"
    elif isinstance(node, BinaryExpr):
        kind = _BINARY_KIND[node.op]
        preds["left-expr"] = [node.left]
        preds["right-expr"] = [node.right]
    elif isinstance(node, ArrowExpr):
        kind = "NodeTypeArrowExpression"
        name("function-name", node.function)
        preds["left-expr"] = [node.left]
        preds["right-expr"] = [node.right]
    elif isinstance(node, CaveatDefinition):
        kind = "NodeTypeCaveatDefinition"
        name("caveat-definition-name", node.name)
        if node.parameters:
            preds["parameters"] = list(node.parameters)
        if node.expression is not None:
            preds["caveat-definition-expression"] = [node.expression]
        children += node.errors
    elif isinstance(node, CaveatParameter):
        kind = "NodeTypeCaveatParameter"
        name("caveat-parameter-name", node.name)
        if node.type is not None:
            preds["caveat-parameter-type"] = [node.type]
        children += node.errors
    elif isinstance(node, CaveatTypeRef):
        kind = "NodeTypeCaveatTypeReference"
        name("type-name", node.name)
        if node.children:
            preds["child-types"] = list(node.children)
        children += node.errors
    elif isinstance(node, CaveatExpression):
        kind = "NodeTypeCaveatExpression"
        props["caveat-expression-expressionstr"] = node.text
    elif isinstance(node, UseFlag):
        kind = "NodeTypeUseFlag"
        name("use-flag-name", node.name)
        children += node.errors
    elif isinstance(node, Import):
        kind = "NodeTypeImport"
        name("import-path", node.path)
        children += node.errors
    elif isinstance(node, ErrorNode):
        kind = "NodeTypeError"
        props["error-message"] = node.message
        if node.source:
            props["error-source"] = node.source
    else:  # pragma: no cover - every node type is listed above
        raise TypeError(f"not a schema AST node: {node!r}")
    if children:
        preds["child-node"] = children
    return kind, props, preds


def _dump_lines(node: object, source: str, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(node, str):  # a comment
        out.append(f"{pad}NodeTypeComment")
        out.append(f"{pad}  comment-value = {node}")
        return
    kind, props, preds = _describe(node)
    span: Span = getattr(node, "span")  # noqa: B009 - every node has one
    props["start-rune"] = str(span.byte_start)
    props["end-rune"] = str(span.byte_end - 1)
    props["input-source"] = source
    out.append(f"{pad}{kind}")
    for key in sorted(props):
        out.append(f"{pad}  {key} = {props[key]}")
    for key in sorted(preds):
        out.append(f"{pad}  {key} =>")
        for child in preds[key]:
            _dump_lines(child, source, indent + 4, out)


def dump(node: object, source: str | None = None) -> str:
    """The tree under ``node`` in SpiceDB's parser-test format.

    Offsets are printed as SpiceDB prints them (UTF-8 byte offsets, the end inclusive), under the
    names ``start-rune``/``end-rune``. ``source`` defaults to the file's source name.
    """
    if source is None:
        source = node.source if isinstance(node, File) else ""
    out: list[str] = []
    _dump_lines(node, source, 0, out)
    return "\n".join(out)
