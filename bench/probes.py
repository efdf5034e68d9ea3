"""The questions a benchmark asks: checks, lookups and writes, as plain data shared by every mode."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckProbe:
    """``resource#permission@subject``, with an optional caveat context."""

    resource: str
    permission: str
    subject: str
    context: dict[str, Any] | None = field(default=None, hash=False)

    def key(self) -> str:
        text = f"{self.resource}#{self.permission}@{self.subject}"
        if self.context:
            text += json.dumps(self.context, sort_keys=True, separators=(",", ":"))
        return text


@dataclass(frozen=True, slots=True)
class LookupProbe:
    """LookupResources of ``resource_type#permission`` for ``subject``; ``expected`` is the
    reference evaluator's result count when it knows one."""

    label: str
    resource_type: str
    permission: str
    subject: str
    expected: int | None = None
    context: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True)
class SubjectsProbe:
    """LookupSubjects of ``subject_type`` with ``permission`` on ``resource``."""

    label: str
    resource: str
    permission: str
    subject_type: str
    expected: int | None = None


@dataclass(frozen=True, slots=True)
class WriteProbe:
    """Write ``relationship`` (TOUCH), then ask ``check`` at the write's token: always allowed."""

    relationship: str
    check: CheckProbe


def write_probe(i: int, document: str) -> WriteProbe:
    """The i-th write of a run: a new viewer on ``document``."""
    user = f"user:bench_writer_{i}"
    return WriteProbe(f"{document}#viewer@{user}", CheckProbe(document, "view", user))


def answer_digest(ids: list[str]) -> str:
    """A short fingerprint of a result set, to compare sets without storing them."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12]
