"""Reading ``import "path.zed"`` targets: the resolver protocol and a file-system resolver.

The compiler hands a resolver paths that are already relative to the root schema, normalised and
``/``-separated (an ``import "b.zed"`` inside ``sub/a.zed`` asks for ``sub/b.zed``), and it has
already refused absolute paths and ``..``. A resolver returns the file's text, or raises
:class:`FileNotFoundError` / :class:`ValueError`; the compiler turns either into a
:class:`~zanzi.errors.SchemaValidationError` that points at the ``import`` statement.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeAlias

__all__ = ["ImportResolver", "file_import_resolver", "mapping_import_resolver"]

#: ``resolver(path) -> text``.
ImportResolver: TypeAlias = Callable[[str], str]


def file_import_resolver(root_dir: str | os.PathLike[str]) -> ImportResolver:
    """Read imports from files under ``root_dir``.

    Paths that lead outside ``root_dir`` once resolved (absolute paths, ``..``, symbolic links
    pointing elsewhere) are refused with :class:`ValueError`; a missing file raises
    :class:`FileNotFoundError`.
    """
    root = Path(root_dir).resolve()

    def resolve(path: str) -> str:
        if Path(path).is_absolute():
            raise ValueError(f"import path `{path}` is absolute")
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ValueError(f"import path `{path}` leads outside the schema root")
        return target.read_text(encoding="utf-8")

    return resolve


def mapping_import_resolver(files: Mapping[str, str]) -> ImportResolver:
    """Read imports from an in-memory ``{path: text}`` mapping (tests, embedded schemas)."""

    def resolve(path: str) -> str:
        try:
            return files[path]
        except KeyError:
            raise FileNotFoundError(f"no such file: `{path}`") from None

    return resolve
