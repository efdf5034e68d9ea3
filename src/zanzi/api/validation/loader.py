"""Reading SpiceDB validation files (and plain ``.zed`` schemas) with source positions.

Format (SpiceDB's ``pkg/validationfile``): a YAML mapping with ``schema`` or ``schemaFile``,
``relationships`` (one per line; blank lines and ``//`` comments skipped), ``assertions``
(``assertTrue`` / ``assertFalse`` / ``assertCaveated`` lists of
``resource#permission@subject[ with {json context}]``) and ``validation`` (expected subjects per
``resource#permission``). Every item keeps its line and column in the file, so errors can point
at it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from zanzi.errors import InvalidArgument, InvalidRelationship, ZanziError
from zanzi.model import Relationship

__all__ = ["Assertion", "ExpectedEntry", "FileError", "ValidationFile", "load_validation_file", "parse_text"]

ASSERTION_KINDS = ("assertTrue", "assertFalse", "assertCaveated")
KNOWN_KEYS = {"schema", "schemaFile", "relationships", "assertions", "validation"}


class FileError(InvalidArgument):
    """A problem in a validation file, with ``line`` and ``column`` (1-based) where known."""


@dataclass(frozen=True, slots=True)
class Assertion:
    kind: str  # assertTrue | assertFalse | assertCaveated
    text: str
    relationship: Relationship
    context: Mapping[str, Any] | None
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ExpectedEntry:
    """One ``"[subject] is <onr>/<onr>"`` string under a ``resource#permission`` key."""

    key: str
    text: str
    line: int
    column: int


@dataclass(slots=True)
class ValidationFile:
    path: Path | None
    schema: str | None = None
    schema_line: int = 1  # line of the file where the schema text starts
    schema_path: Path | None = None  # for schemaFile and .zed files: where imports resolve from
    relationships: list[tuple[Relationship, int]] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)
    expected: dict[str, tuple[int, list[ExpectedEntry]]] = field(default_factory=dict)
    errors: list[FileError] = field(default_factory=list)


def load_validation_file(path: str | Path) -> ValidationFile:
    """Load a ``.yaml`` validation file or a ``.zed`` schema (a ``.zed`` file that is really a
    validation file is read as one). Problems are collected in ``errors``, not raised."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        vf = ValidationFile(p)
        vf.errors.append(FileError(f"cannot read {p}: {exc.strerror or exc}"))
        return vf
    except UnicodeDecodeError:
        vf = ValidationFile(p)
        vf.errors.append(FileError(f"cannot read {p}: it is not UTF-8 text"))
        return vf
    return parse_text(text, path=p)


def parse_text(text: str, *, path: Path | None = None) -> ValidationFile:
    vf = ValidationFile(path)
    is_zed = path is not None and path.suffix == ".zed"
    root: Node | None = None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        if not is_zed:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            vf.errors.append(FileError(f"invalid YAML: {exc}", line=line, column=column))
            return vf
    if is_zed and not (isinstance(root, MappingNode) and _keys(root) & KNOWN_KEYS):
        vf.schema = text
        vf.schema_path = path
        return vf
    if root is None:
        vf.errors.append(
            FileError("the validation file is empty: either schema or schemaFile must be present")
        )
        return vf
    if not isinstance(root, MappingNode):
        vf.errors.append(
            FileError("a validation file must be a YAML mapping", line=_line(root), column=_col(root))
        )
        return vf
    _read_mapping(vf, root)
    return vf


def _keys(node: MappingNode) -> set[str]:
    return {k.value for k, _ in node.value if isinstance(k, ScalarNode)}


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _col(node: Node) -> int:
    return int(node.start_mark.column) + 1


def _read_mapping(vf: ValidationFile, root: MappingNode) -> None:
    entries = {k.value: (k, v) for k, v in root.value if isinstance(k, ScalarNode)}
    if "validation_tuples" in entries:
        k, _ = entries["validation_tuples"]
        vf.errors.append(
            FileError("relationships must be specified in `relationships`", line=_line(k), column=_col(k))
        )
    if "namespace_configs" in entries:
        k, _ = entries["namespace_configs"]
        vf.errors.append(
            FileError(
                "namespace_configs are no longer supported: use `schema`", line=_line(k), column=_col(k)
            )
        )
    if "schema" in entries and "schemaFile" in entries:
        k, _ = entries["schemaFile"]
        vf.errors.append(
            FileError("only one of schema or schemaFile can be present", line=_line(k), column=_col(k))
        )
    elif "schema" in entries:
        _, v = entries["schema"]
        if isinstance(v, ScalarNode):
            vf.schema = str(v.value)
            # Block scalars (| and >) start on the line after the key.
            vf.schema_line = _line(v) + (1 if v.style in ("|", ">") else 0)
        else:
            vf.errors.append(FileError("schema must be a string", line=_line(v), column=_col(v)))
    elif "schemaFile" in entries:
        _, v = entries["schemaFile"]
        _read_schema_file(vf, v)
    elif not vf.errors:
        vf.errors.append(FileError("either schema or schemaFile must be present"))
    if "relationships" in entries:
        _read_relationships(vf, entries["relationships"][1])
    if "assertions" in entries:
        _read_assertions(vf, entries["assertions"][1])
    if "validation" in entries:
        _read_expected(vf, entries["validation"][1])


def _read_schema_file(vf: ValidationFile, v: Node) -> None:
    if not isinstance(v, ScalarNode) or not v.value:
        vf.errors.append(FileError("schemaFile must be a path", line=_line(v), column=_col(v)))
        return
    base = vf.path.parent if vf.path is not None else Path.cwd()
    target = (base / str(v.value)).resolve()
    try:
        vf.schema = target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        vf.errors.append(
            FileError(f"schemaFile `{v.value}` is not UTF-8 text", line=_line(v), column=_col(v))
        )
        return
    except OSError as exc:
        vf.errors.append(
            FileError(
                f"cannot read schemaFile `{v.value}` ({target}): {exc.strerror or exc}",
                line=_line(v),
                column=_col(v),
            )
        )
        return
    vf.schema_path = target


def _read_relationships(vf: ValidationFile, v: Node) -> None:
    if isinstance(v, ScalarNode) and v.tag == "tag:yaml.org,2002:null":
        return
    if not isinstance(v, ScalarNode):
        vf.errors.append(FileError("relationships must be a block of text", line=_line(v), column=_col(v)))
        return
    first_line = _line(v) + (1 if v.style in ("|", ">") else 0)
    raw_lines = str(v.value).split("\n")
    seen: dict[tuple[Any, ...], str] = {}
    # Folded blocks (>) lose the exact line mapping; keep the best estimate.
    for offset, raw in enumerate(raw_lines):
        line_text = raw.strip()
        if not line_text or line_text.startswith("//"):
            continue
        line = first_line + offset * (2 if v.style == ">" else 1)
        try:
            rel = Relationship.parse(line_text)
        except InvalidRelationship as exc:
            vf.errors.append(
                FileError(f"error parsing relationship `{line_text}`: {exc}", line=line, column=1)
            )
            continue
        key = rel.key()
        if key in seen:
            vf.errors.append(
                FileError(
                    f"found repeated relationship `{rel.resource}#{rel.relation}@{rel.subject}`",
                    line=line,
                    column=1,
                )
            )
            continue
        seen[key] = line_text
        vf.relationships.append((rel, line))


def _read_assertions(vf: ValidationFile, v: Node) -> None:
    if isinstance(v, ScalarNode) and v.tag == "tag:yaml.org,2002:null":
        return
    if not isinstance(v, MappingNode):
        vf.errors.append(FileError("assertions must be a mapping", line=_line(v), column=_col(v)))
        return
    for k, items in v.value:
        kind = k.value if isinstance(k, ScalarNode) else None
        if kind not in ASSERTION_KINDS:
            vf.errors.append(
                FileError(
                    f"unknown assertion kind `{kind}`: expected one of {', '.join(ASSERTION_KINDS)}",
                    line=_line(k),
                    column=_col(k),
                )
            )
            continue
        if isinstance(items, ScalarNode) and items.tag == "tag:yaml.org,2002:null":
            continue
        if not isinstance(items, SequenceNode):
            vf.errors.append(FileError(f"{kind} must be a list", line=_line(items), column=_col(items)))
            continue
        for item in items.value:
            _read_assertion(vf, kind, item)


def _read_assertion(vf: ValidationFile, kind: str, item: Node) -> None:
    line, column = _line(item), _col(item) + (1 if isinstance(item, ScalarNode) and item.style else 0)
    if not isinstance(item, ScalarNode):
        vf.errors.append(FileError(f"{kind} entries must be strings", line=line, column=column))
        return
    text = str(item.value)
    rel_text, sep, context_text = text.partition(" with ")
    context: dict[str, Any] | None = None
    if sep:
        try:
            parsed = json.loads(context_text)
        except json.JSONDecodeError as exc:
            vf.errors.append(
                FileError(f"invalid caveat context in `{text}`: {exc}", line=line, column=column)
            )
            return
        if not isinstance(parsed, dict):
            vf.errors.append(
                FileError(f"caveat context in `{text}` must be a JSON object", line=line, column=column)
            )
            return
        context = parsed
    try:
        rel = Relationship.parse(rel_text.strip())
    except ZanziError as exc:
        vf.errors.append(FileError(f"error parsing assertion `{text}`: {exc}", line=line, column=column))
        return
    vf.assertions.append(Assertion(kind, text, rel, context, line, column))


def _read_expected(vf: ValidationFile, v: Node) -> None:
    if isinstance(v, ScalarNode) and v.tag == "tag:yaml.org,2002:null":
        return
    if not isinstance(v, MappingNode):
        vf.errors.append(FileError("validation must be a mapping", line=_line(v), column=_col(v)))
        return
    for k, items in v.value:
        key = str(k.value) if isinstance(k, ScalarNode) else ""
        entries: list[ExpectedEntry] = []
        if isinstance(items, SequenceNode):
            for item in items.value:
                if isinstance(item, ScalarNode):
                    col = _col(item) + (1 if item.style else 0)
                    entries.append(ExpectedEntry(key, str(item.value), _line(item), col))
                else:
                    vf.errors.append(
                        FileError("expected subjects must be strings", line=_line(item), column=_col(item))
                    )
        elif not (isinstance(items, ScalarNode) and items.tag == "tag:yaml.org,2002:null"):
            vf.errors.append(
                FileError(f"`{key}` must list expected subjects", line=_line(items), column=_col(items))
            )
        vf.expected[key] = (_line(k), entries)
