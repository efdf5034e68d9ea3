"""Running a validation file against a fresh datastore, item by item.

Each file is loaded into its own datastore (``memory://`` unless told otherwise): the schema is
compiled (imports and partials resolved) and written, the relationships are created, then every
assertion is checked and every expected relation is compared with a recursive expansion. The
report lists one outcome per item, with the line and column it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zanzi.api.service import Service
from zanzi.api.validation.expected import FoundSet, found_subjects, parse_expected
from zanzi.api.validation.loader import Assertion, ExpectedEntry, ValidationFile, load_validation_file
from zanzi.engine.validation import validate_relationship
from zanzi.errors import ZanziError
from zanzi.model import Consistency, ObjectRef, Operation, Permissionship, SubjectRef, Update
from zanzi.schema import compile_schema, print_schema
from zanzi.schema.imports import file_import_resolver

__all__ = ["FileReport", "Outcome", "run_file", "run_validation"]

_EXPECTED_PERMISSIONSHIP = {
    "assertTrue": Permissionship.HAS_PERMISSION,
    "assertFalse": Permissionship.NO_PERMISSION,
    "assertCaveated": Permissionship.CONDITIONAL_PERMISSION,
}
_BATCH = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    """One item of a validation file and how it went."""

    passed: bool
    what: str
    message: str = ""
    line: int | None = None
    column: int | None = None

    def location(self, path: Path | None) -> str:
        where = str(path) if path is not None else "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


@dataclass(slots=True)
class FileReport:
    path: Path | None
    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    relationships: int = 0

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.passed)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def run_file(path: str | Path, *, datastore: str | Callable[[], Service] = "memory://") -> FileReport:
    """Validate one file; never raises for problems in the file itself."""
    vf = load_validation_file(path)
    return run_validation(vf, datastore=datastore)


def run_validation(vf: ValidationFile, *, datastore: str | Callable[[], Service] = "memory://") -> FileReport:
    report = FileReport(vf.path)
    if vf.errors:
        for err in vf.errors:
            report.outcomes.append(
                Outcome(False, "load", str(err), err.details.get("line"), err.details.get("column"))
            )
        return report
    assert vf.schema is not None
    service = datastore() if callable(datastore) else Service.open(datastore)
    try:
        if not _load(vf, service, report):
            return report
        for assertion in vf.assertions:
            report.outcomes.append(_run_assertion(service, assertion))
        for key, (key_line, entries) in vf.expected.items():
            report.outcomes.extend(_run_expected(service, key, key_line, entries))
    finally:
        service.close()
    return report


def _load(vf: ValidationFile, service: Service, report: FileReport) -> bool:
    """Compile and write the schema, then the relationships; record one outcome."""
    assert vf.schema is not None
    # The compiler resolves imports relative to the schema's own name, under its folder.
    origin = vf.schema_path or vf.path
    source = origin.name if origin is not None else "schema"
    root = origin.parent if origin is not None else Path.cwd()
    try:
        schema = compile_schema(vf.schema, source=source, import_resolver=file_import_resolver(root))
        service.write_schema(print_schema(schema))
    except ZanziError as exc:
        line = exc.details.get("line")
        if isinstance(line, int) and vf.schema_path is None:
            line += vf.schema_line - 1
        report.outcomes.append(
            Outcome(False, "schema", f"schema error: {exc}", line, exc.details.get("column"))
        )
        return False
    report.warnings.extend(_warnings(schema))
    rels = vf.relationships
    ts = service.engine().ts
    for rel, line in rels:
        try:
            validate_relationship(ts, rel)
        except ZanziError as exc:
            report.outcomes.append(Outcome(False, "relationship", f"relationship `{rel}`: {exc}", line, 1))
            return False
    for start in range(0, len(rels), _BATCH):
        service.write([Update(Operation.CREATE, r) for r, _ in rels[start : start + _BATCH]])
    report.relationships = len(rels)
    report.outcomes.append(Outcome(True, "load", f"schema and {len(rels)} relationships loaded"))
    return True


def _warnings(schema: object) -> list[str]:
    try:
        from zanzi.schema import schema_warnings
    except ImportError:  # pragma: no cover - older schema package
        return []
    return [str(w) for w in schema_warnings(schema)]  # type: ignore[arg-type]


def _run_assertion(service: Service, a: Assertion) -> Outcome:
    want = _EXPECTED_PERMISSIONSHIP[a.kind]
    rel = a.relationship
    what = f"{a.kind} {a.text}"
    try:
        result = service.check(
            rel.resource,
            rel.relation,
            rel.subject,
            consistency=Consistency.fully_consistent(),
            context=a.context,
        )
    except ZanziError as exc:
        return Outcome(False, what, f"{a.text}: {exc}", a.line, a.column)
    if result.permissionship is want:
        return Outcome(True, what, line=a.line, column=a.column)
    got = result.permissionship.name
    extra = f" (missing context: {', '.join(result.missing_context)})" if result.missing_context else ""
    message = f"{a.text}: expected {want.name}, got {got}{extra}"
    if want is Permissionship.HAS_PERMISSION and result.permissionship is Permissionship.NO_PERMISSION:
        message = f"Expected relation or permission {a.text} to exist; got NO_PERMISSION"
    elif want is Permissionship.NO_PERMISSION and result.permissionship is Permissionship.HAS_PERMISSION:
        message = f"Expected relation or permission {a.text} to not exist; got HAS_PERMISSION"
    return Outcome(False, what, message, a.line, a.column)


def _run_expected(service: Service, key: str, key_line: int, entries: list[ExpectedEntry]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        resource_text, _, relation = key.partition("#")
        resource = ObjectRef.parse(resource_text)
        if not relation:
            raise ZanziError(f"invalid key `{key}`: expected resource_type:id#relation")
        tree = service.expand(
            resource, relation, consistency=Consistency.fully_consistent(), recursive=True
        ).tree
    except ZanziError as exc:
        return [Outcome(False, f"validation {key}", f"`{key}`: {exc}", key_line, 1)]
    found = found_subjects(tree)
    encountered: set[tuple[str, str, str | None]] = set()
    for entry in entries:
        outcomes.append(_compare(key, entry, found, encountered))
    for sk in sorted(found.items, key=lambda k: (k[0], k[1], k[2] or "")):
        if sk not in encountered:
            subject = SubjectRef(*sk)
            outcomes.append(
                Outcome(
                    False,
                    f"validation {key}",
                    f"For object and permission/relation `{key}`, subject `{_onr(subject)}` found "
                    "but missing from specified",
                    key_line,
                    1,
                )
            )
    return outcomes


def _onr(s: SubjectRef) -> str:
    return f"{s.type}:{s.id}#{s.relation or '...'}" if s.relation else f"{s.type}:{s.id}"


def _compare(
    key: str, entry: ExpectedEntry, found: FoundSet, encountered: set[tuple[str, str, str | None]]
) -> Outcome:
    what = f"validation {key} {entry.text}"
    try:
        expected = parse_expected(entry.text)
    except ZanziError as exc:
        return Outcome(False, what, str(exc), entry.line, entry.column)
    s = expected.subject
    sk = (s.type, s.id, s.relation)
    encountered.add(sk)
    f = found.items.get(sk)
    if f is None:
        return Outcome(
            False,
            what,
            f"For object and permission/relation `{key}`, missing expected subject `{_onr(s)}`",
            entry.line,
            entry.column,
        )
    problems = []
    got_rels = tuple(sorted(f.relationships))
    if expected.relationships != got_rels:
        problems.append(
            f"found different relationships for subject `{_onr(s)}`: Specified: "
            f"`{'/'.join(f'<{r}>' for r in expected.relationships)}`, Computed: "
            f"`{'/'.join(f'<{r}>' for r in got_rels)}`"
        )
    if s.is_wildcard:
        want_ex = sorted(f"{_onr(x)}{'[...]' if c else ''}" for x, c in expected.exclusions)
        got_ex = sorted(f"{_onr(SubjectRef(*x))}{'[...]' if c else ''}" for x, c in f.excluded.items())
        if want_ex != got_ex:
            problems.append(
                f"found different excluded subjects for subject `{_onr(s)}`: "
                f"Specified: `{', '.join(want_ex)}`, Computed: `{', '.join(got_ex)}`"
            )
    elif expected.exclusions:
        problems.append("found unexpected excluded subjects")
    if f.caveated != expected.caveated:
        problems.append("found caveat mismatch")
    if problems:
        message = "; ".join(f"For object and permission/relation `{key}`, {p}" for p in problems)
        return Outcome(False, what, message, entry.line, entry.column)
    return Outcome(True, what, line=entry.line, column=entry.column)


def count(reports: list[FileReport]) -> tuple[int, int]:
    """Total passed and failed outcomes over several reports."""
    passed = sum(r.passed for r in reports)
    failed = sum(r.failed for r in reports)
    return passed, failed
