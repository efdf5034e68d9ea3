"""The ``zanzi`` command line, end to end through click's CliRunner on a SQLite datastore."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import zanzi
from zanzi.cli.main import cli

SCHEMA = """\
definition user {}

definition group {
    relation member: user | group#member
}

definition doc {
    relation owner: user
    relation viewer: user | user:* | group#member
    relation banned: user
    permission edit = owner
    permission view = (viewer + edit) - banned
}
"""

RELATIONSHIPS = [
    "group:eng#member@user:alice",
    "group:eng#member@user:bob",
    "doc:readme#owner@user:carol",
    "doc:readme#viewer@group:eng#member",
    "doc:public#viewer@user:*",
    "doc:public#banned@user:mallory",
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch a zanzi.db in the repository, and never inherit the caller's datastore.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZANZI_DATASTORE", raising=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'zanzi-test.db'}"


def zanzi_cli(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--datastore", url, *args], input=input)


def ok(url: str, *args: str, input: str | None = None) -> Result:
    result = zanzi_cli(url, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


@pytest.fixture
def loaded(url: str, tmp_path: Path) -> str:
    """A datastore with SCHEMA and RELATIONSHIPS."""
    (tmp_path / "schema.zed").write_text(SCHEMA)
    ok(url, "schema", "write", "schema.zed")
    ok(url, "relationship", "create", *RELATIONSHIPS)
    return url


def state(url: str) -> tuple[str, str | None, list[str]]:
    """Everything a failed command must leave alone: the head revision, schema and relationships."""
    with zanzi.open(url) as db:
        try:
            schema: str | None = db.read_schema().text
        except zanzi.ZanziError:
            schema = None
        rels = [str(r) for r in db.export_relationships()] if schema else []
        return db.head_token(), schema, rels


def assert_fails(url: str, args: list[str], code: int, message: str, input: str | None = None) -> Result:
    before = state(url)
    result = zanzi_cli(url, *args, input=input)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert state(url) == before
    return result


# -- the group ---------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in (
        "validate",
        "schema",
        "relationship",
        "check",
        "expand",
        "lookup-resources",
        "lookup-subjects",
        "import",
        "export",
        "watch",
        "demo",
    ):
        assert name in result.stdout


def test_datastore_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_url = f"sqlite:///{tmp_path / 'from-env.db'}"
    (tmp_path / "schema.zed").write_text(SCHEMA)
    result = CliRunner().invoke(cli, ["schema", "write", "schema.zed"], env={"ZANZI_DATASTORE": env_url})
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "from-env.db").exists()
    assert not (tmp_path / "zanzi.db").exists()


def test_default_datastore_is_zanzi_db_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "schema.zed").write_text(SCHEMA)
    result = CliRunner().invoke(cli, ["schema", "write", "schema.zed"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "zanzi.db").exists()


def test_unknown_datastore_scheme_is_invalid_input() -> None:
    result = zanzi_cli("bogus://x", "schema", "read")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "bogus" in result.stderr


def test_bad_flags_are_click_usage_errors(loaded: str) -> None:
    result = zanzi_cli(loaded, "check", "doc:readme", "view", "user:alice", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    result = zanzi_cli(
        loaded,
        "check",
        "doc:readme",
        "view",
        "user:alice",
        "--consistency-full",
        "--consistency-at-least",
        "zz1_x",
    )
    assert result.exit_code == 2
    assert "mutually exclusive" in result.stderr


# -- schema ------------------------------------------------------------------------------------


def test_schema_write_and_read(url: str, tmp_path: Path) -> None:
    (tmp_path / "schema.zed").write_text(SCHEMA)
    token = ok(url, "schema", "write", "schema.zed").stdout.strip()
    assert token.startswith("zz1_")
    assert ok(url, "schema", "read").stdout == SCHEMA
    assert ok(url, "schema", "read", "--consistency-at-exactly", token).stdout == SCHEMA


def test_schema_write_from_stdin(url: str) -> None:
    ok(url, "schema", "write", "-", input=SCHEMA)
    assert "definition doc" in ok(url, "schema", "read").stdout


def test_schema_write_resolves_imports_next_to_the_file(url: str, tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "user.zed").write_text("definition user {}\n")
    (tmp_path / "main.zed").write_text(
        'use import\nimport "user.zed"\n\ndefinition doc {\n    relation viewer: user\n}\n'
    )
    (tmp_path / "defs" / "main.zed").write_text((tmp_path / "main.zed").read_text())
    ok(url, "schema", "write", "defs/main.zed")
    stored = ok(url, "schema", "read").stdout
    assert "definition user" in stored
    assert "import" not in stored


def test_schema_syntax_error_has_line_and_column(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "bad.zed").write_text("definition user {}\n\ndefinition doc {\n    relation viewer user\n}\n")
    result = assert_fails(loaded, ["schema", "write", "bad.zed"], 2, "line 4, column 21")
    assert "bad.zed" in result.stderr


def test_schema_referencing_an_unknown_type_fails(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "bad.zed").write_text("definition user {}\n\ndefinition doc {\n    relation viewer: usr\n}\n")
    assert_fails(loaded, ["schema", "write", "bad.zed"], 1, "`usr` not found")


def test_schema_change_that_orphans_relationships_is_refused(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "smaller.zed").write_text(
        "definition user {}\n\ndefinition group {\n    relation member: user\n}\n"
    )
    assert_fails(loaded, ["schema", "write", "smaller.zed"], 2, "doc")  # INVALID_ARGUMENT, as SpiceDB


def test_schema_write_of_a_missing_file(loaded: str) -> None:
    assert_fails(loaded, ["schema", "write", "missing.zed"], 2, "cannot read missing.zed")


def test_schema_read_without_a_schema(url: str) -> None:
    result = zanzi_cli(url, "schema", "read")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "no schema" in result.stderr


# -- relationships -----------------------------------------------------------------------------


def test_relationship_create_read_touch_delete(loaded: str) -> None:
    assert lines(ok(loaded, "relationship", "read", "doc:readme")) == [
        "doc:readme#owner@user:carol",
        "doc:readme#viewer@group:eng#member",
    ]
    token = ok(
        loaded, "rel", "touch", "doc:readme#viewer@user:dave", "doc:readme#owner@user:carol"
    ).stdout.strip()
    assert token.startswith("zz1_")
    assert "doc:readme#viewer@user:dave" in lines(ok(loaded, "rel", "read", "doc#viewer@user"))
    ok(loaded, "rel", "delete", "doc:readme#viewer@user:dave", "doc:readme#viewer@user:nobody")
    assert "doc:readme#viewer@user:dave" not in lines(ok(loaded, "rel", "read", "doc"))
    # No filter: every relationship.
    assert sorted(lines(ok(loaded, "rel", "read"))) == sorted(RELATIONSHIPS)


def test_relationship_read_pages_with_limit_and_cursor(loaded: str) -> None:
    first = ok(loaded, "rel", "read", "group", "--limit", "1")
    assert lines(first) == ["group:eng#member@user:alice"]
    cursor = first.stderr.split("next cursor:")[1].strip()
    second = ok(loaded, "rel", "read", "group", "--limit", "1", "--cursor", cursor)
    assert lines(second) == ["group:eng#member@user:bob"]


def test_relationship_create_from_file_and_stdin(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "rels.txt").write_text("// more readers\n\ndoc:a#viewer@user:x\n  doc:a#viewer@user:y  \n")
    ok(loaded, "rel", "create", "--file", "rels.txt")
    ok(loaded, "rel", "create", "-", input="doc:b#viewer@user:x\n// done\n")
    assert lines(ok(loaded, "rel", "read", "doc#viewer@user:x")) == [
        "doc:a#viewer@user:x",
        "doc:b#viewer@user:x",
    ]
    assert lines(ok(loaded, "rel", "read", "doc:a")) == ["doc:a#viewer@user:x", "doc:a#viewer@user:y"]


def test_relationship_create_needs_something(loaded: str) -> None:
    result = zanzi_cli(loaded, "rel", "create")
    assert result.exit_code == 2
    assert "give relationships" in result.stderr


def test_creating_an_existing_relationship_fails(loaded: str) -> None:
    assert_fails(loaded, ["rel", "create", "doc:new#viewer@user:z", RELATIONSHIPS[0]], 1, "already exists")


def test_malformed_relationship_string(loaded: str) -> None:
    assert_fails(
        loaded,
        ["rel", "create", "doc:x#viewer@user:a", "doc:1#viewer"],
        2,
        "argument 2: invalid relationship",
    )


def test_malformed_relationship_in_a_file_names_the_line(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "rels.txt").write_text("doc:a#viewer@user:x\n\nnot a relationship\n")
    assert_fails(loaded, ["rel", "touch", "--file", "rels.txt"], 2, "rels.txt:3:")


def test_unknown_relation(loaded: str) -> None:
    assert_fails(loaded, ["rel", "create", "doc:x#editor@user:a"], 1, "relation `editor` not found")


def test_unknown_object_type(loaded: str) -> None:
    assert_fails(loaded, ["rel", "create", "folder:x#viewer@user:a"], 1, "`folder` not found")


def test_subject_type_not_allowed(loaded: str) -> None:
    assert_fails(loaded, ["rel", "create", "doc:x#banned@group:eng#member"], 2, "not allowed")


def test_writing_to_a_permission_is_refused(loaded: str) -> None:
    assert_fails(loaded, ["rel", "create", "doc:x#view@user:a"], 2, "permission `view`")


def test_preconditions(loaded: str) -> None:
    assert_fails(
        loaded, ["rel", "create", "doc:x#viewer@user:a", "--precondition", "doc:x#owner"], 1, "precondition"
    )
    assert_fails(
        loaded,
        ["rel", "create", "doc:x#viewer@user:a", "--precondition-not", "group:eng#member@user:alice"],
        1,
        "precondition",
    )
    ok(
        loaded,
        "rel",
        "create",
        "doc:x#viewer@user:a",
        "--precondition",
        "group:eng#member@user:alice",
        "--precondition-not",
        "doc:x#owner",
    )
    assert lines(ok(loaded, "rel", "read", "doc:x")) == ["doc:x#viewer@user:a"]


def test_delete_matching(loaded: str) -> None:
    # INVALID_ARGUMENT as in SpiceDB (TooManyToDelete), so exit 2
    assert_fails(loaded, ["rel", "delete-matching", "group:eng", "--limit", "1"], 2, "more than 1")
    result = ok(loaded, "rel", "delete-matching", "group:eng", "--limit", "1", "--allow-partial")
    assert "partial" in result.stderr
    assert len(lines(ok(loaded, "rel", "read", "group:eng"))) == 1
    result = ok(loaded, "rel", "delete-matching", "doc#viewer")
    assert "deleted 2" in result.stderr
    assert result.stdout.strip().startswith("zz1_")
    assert lines(ok(loaded, "rel", "read", "doc#viewer")) == []


def test_bad_filter(loaded: str) -> None:
    assert_fails(loaded, ["rel", "delete-matching", "doc:x y"], 2, "invalid relationship filter")
    assert_fails(loaded, ["rel", "delete-matching", "nope"], 1, "`nope` not found")


# -- questions ---------------------------------------------------------------------------------


def test_check_allowed_and_denied(loaded: str) -> None:
    assert ok(loaded, "check", "doc:readme", "view", "user:alice").stdout == "true\n"  # via group:eng
    assert ok(loaded, "check", "doc:readme", "edit", "user:alice").stdout == "false\n"
    assert ok(loaded, "check", "doc:public", "view", "user:anyone").stdout == "true\n"
    assert ok(loaded, "check", "doc:public", "view", "user:mallory").stdout == "false\n"
    assert ok(loaded, "check", "doc:readme", "view", "group:eng#member").stdout == "true\n"


def test_check_fail_on_deny(loaded: str) -> None:
    assert ok(loaded, "check", "doc:readme", "view", "user:alice", "--fail-on-deny").stdout == "true\n"
    result = zanzi_cli(loaded, "check", "doc:readme", "edit", "user:alice", "--fail-on-deny")
    assert result.exit_code == 1
    assert result.stdout == "false\n"


def test_check_json(loaded: str) -> None:
    payload = json.loads(ok(loaded, "check", "doc:readme", "view", "user:bob", "--json").stdout)
    assert payload["permissionship"] == "HAS_PERMISSION"
    assert payload["allowed"] is True
    assert payload["token"].startswith("zz1_")


def test_check_with_tokens_sees_writes_and_snapshots(loaded: str) -> None:
    before = ok(loaded, "check", "doc:readme", "view", "user:erin", "--json")
    old = json.loads(before.stdout)["token"]
    new = ok(loaded, "rel", "create", "doc:readme#viewer@user:erin").stdout.strip()
    assert (
        ok(loaded, "check", "doc:readme", "view", "user:erin", "--consistency-at-least", new).stdout
        == "true\n"
    )
    assert (
        ok(loaded, "check", "doc:readme", "view", "user:erin", "--consistency-at-exactly", old).stdout
        == "false\n"
    )
    assert ok(loaded, "check", "doc:readme", "view", "user:erin", "--consistency-full").stdout == "true\n"


def test_check_with_malformed_tampered_and_foreign_tokens(loaded: str, tmp_path: Path) -> None:
    args = ["check", "doc:readme", "view", "user:alice", "--consistency-at-least"]
    # Tokens that cannot be read are INVALID_ARGUMENT (exit 2), as SpiceDB answers.
    assert_fails(loaded, [*args, "not-a-token"], 2, "not a Zanzi token")
    token = json.loads(ok(loaded, "check", "doc:readme", "view", "user:alice", "--json").stdout)["token"]
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    assert_fails(loaded, [*args, tampered], 2, "integrity")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    (tmp_path / "schema.zed").write_text(SCHEMA)
    foreign = ok(other, "schema", "write", "schema.zed").stdout.strip()
    assert_fails(loaded, [*args, foreign], 2, "another datastore")


def test_check_unknown_permission_and_type(loaded: str) -> None:
    assert_fails(loaded, ["check", "doc:readme", "destroy", "user:alice"], 1, "`destroy` not found")
    assert_fails(loaded, ["check", "folder:x", "view", "user:alice"], 1, "`folder` not found")
    assert_fails(loaded, ["check", "doc", "view", "user:alice"], 2, "invalid object reference")


def test_check_bad_context(loaded: str) -> None:
    assert_fails(
        loaded, ["check", "doc:readme", "view", "user:alice", "--context", "{nope"], 2, "not valid JSON"
    )
    assert_fails(loaded, ["check", "doc:readme", "view", "user:alice", "--context", "[1]"], 2, "JSON object")
    assert ok(loaded, "check", "doc:readme", "view", "user:alice", "--context", '{"a": 1}').stdout == "true\n"


def test_check_before_any_schema(url: str) -> None:
    result = zanzi_cli(url, "check", "doc:readme", "view", "user:alice")
    assert result.exit_code == 1
    assert "no schema" in result.stderr


def test_expand(loaded: str) -> None:
    tree = ok(loaded, "expand", "doc:readme", "view").stdout
    assert tree.splitlines()[0] == "doc:readme#view exclusion"
    assert "doc:readme#viewer -> group:eng#member" in tree
    recursive = ok(loaded, "expand", "doc:readme", "view", "--recursive").stdout
    assert "group:eng#member -> user:alice, user:bob" in recursive
    payload = json.loads(ok(loaded, "expand", "doc:readme", "viewer", "--json").stdout)
    assert payload["tree"] == {
        "resource": "doc:readme",
        "relation": "viewer",
        "operation": "leaf",
        "subjects": ["group:eng#member"],
    }
    assert payload["token"].startswith("zz1_")


def test_lookup_resources(loaded: str) -> None:
    ok(loaded, "rel", "create", "doc:zeta#viewer@user:alice")
    assert lines(ok(loaded, "lookup-resources", "doc", "view", "user:alice")) == ["public", "readme", "zeta"]
    assert lines(ok(loaded, "lookup-resources", "doc", "view", "user:alice", "--limit", "2")) == [
        "public",
        "readme",
    ]
    assert lines(ok(loaded, "lookup-resources", "doc", "view", "user:alice", "--cursor", "public")) == [
        "readme",
        "zeta",
    ]
    assert lines(ok(loaded, "lookup-resources", "doc", "view", "user:mallory")) == []
    assert_fails(loaded, ["lookup-resources", "doc", "nope", "user:alice"], 1, "`nope` not found")


def test_lookup_subjects(loaded: str) -> None:
    assert lines(ok(loaded, "lookup-subjects", "doc:readme", "view", "user")) == [
        "user:alice",
        "user:bob",
        "user:carol",
    ]
    assert lines(ok(loaded, "lookup-subjects", "doc:public", "view", "user")) == ["user:* - {user:mallory}"]
    assert lines(ok(loaded, "lookup-subjects", "doc:readme", "view", "group#member")) == ["group:eng#member"]


# -- import, export, watch ---------------------------------------------------------------------


def test_export_import_round_trip(loaded: str, tmp_path: Path) -> None:
    exported = ok(loaded, "export").stdout
    assert sorted(exported.splitlines()) == sorted(RELATIONSHIPS)
    ok(loaded, "export", "dump.txt")
    assert (tmp_path / "dump.txt").read_text() == exported

    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    ok(copy, "schema", "write", "-", input=ok(loaded, "schema", "read").stdout)
    result = ok(copy, "import", "dump.txt")
    assert "imported 6" in result.stderr
    assert result.stdout.strip().startswith("zz1_")
    assert ok(copy, "export").stdout == exported
    assert ok(copy, "check", "doc:readme", "view", "user:bob").stdout == "true\n"


def test_import_from_stdin(loaded: str) -> None:
    ok(loaded, "import", "-", input="// new\ndoc:i#viewer@user:q\n\ndoc:j#viewer@user:q\n")
    assert lines(ok(loaded, "lookup-resources", "doc", "view", "user:q")) == ["i", "j", "public"]


def test_import_errors_leave_the_store_alone(loaded: str, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("doc:i#viewer@user:q\ndoc:j#viewer@@user:q\n")
    assert_fails(loaded, ["import", "bad.txt"], 2, "bad.txt:2:")
    (tmp_path / "dupe.txt").write_text(f"doc:i#viewer@user:q\n{RELATIONSHIPS[0]}\n")
    assert_fails(loaded, ["import", "dupe.txt"], 1, "already exists")
    assert_fails(loaded, ["import", "missing.txt"], 2, "cannot read missing.txt")


def test_export_to_an_unwritable_place(loaded: str) -> None:
    assert_fails(loaded, ["export", "no/such/dir/out.txt"], 2, "cannot write")


def test_watch_with_timeout(loaded: str) -> None:
    start = ok(loaded, "rel", "touch", "doc:w#viewer@user:a").stdout.strip()
    touched = ok(loaded, "rel", "touch", "doc:w#viewer@user:b").stdout.strip()
    deleted = ok(loaded, "rel", "delete", "doc:w#viewer@user:a").stdout.strip()
    began = time.monotonic()
    result = ok(loaded, "watch", "--after", start, "--timeout", "0.3")
    assert time.monotonic() - began < 5
    assert lines(result) == [
        "TOUCH doc:w#viewer@user:b",
        f"token: {touched}",
        "DELETE doc:w#viewer@user:a",
        f"token: {deleted}",
    ]
    events = [
        json.loads(line)
        for line in lines(ok(loaded, "watch", "--after", start, "--timeout", "0.1", "--json"))
    ]
    assert [e["token"] for e in events] == [touched, deleted]
    assert events[1]["changes"] == [{"operation": "DELETE", "relationship": "doc:w#viewer@user:a"}]
    filtered = ok(loaded, "watch", "--after", start, "--timeout", "0.1", "--filter", "doc:w#viewer@user:a")
    assert lines(filtered) == ["DELETE doc:w#viewer@user:a", f"token: {deleted}"]


def test_watch_with_a_bad_token(loaded: str) -> None:
    assert_fails(loaded, ["watch", "--after", "zz1_garbage", "--timeout", "0.1"], 2, "token")


# -- validate ----------------------------------------------------------------------------------

VALIDATION = """\
schema: |-
  definition user {}

  definition doc {
      relation viewer: user
      permission view = viewer
  }
relationships: |-
  doc:1#viewer@user:alice
assertions:
  assertTrue:
    - doc:1#view@user:alice
  assertFalse:
    - doc:1#view@user:bob
validation:
  doc:1#view:
    - "[user:alice] is <doc:1#viewer>"
"""


def test_validate_passing_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALIDATION)
    result = CliRunner().invoke(cli, ["validate", "good.yaml"])
    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == "4 passed, 0 failed"
    assert "FAIL" not in result.stdout


def test_validate_failing_file(tmp_path: Path) -> None:
    failing = VALIDATION.replace(
        "assertFalse:\n    - doc:1#view@user:bob", "assertFalse:\n    - doc:1#view@user:alice"
    )
    (tmp_path / "good.yaml").write_text(VALIDATION)
    (tmp_path / "bad.yaml").write_text(failing)
    result = CliRunner().invoke(cli, ["validate", "good.yaml", "bad.yaml"])
    assert result.exit_code == 1
    assert lines(result)[-1] == "7 passed, 1 failed"
    fail_lines = [line for line in lines(result) if line.startswith("FAIL ")]
    assert len(fail_lines) == 1
    assert fail_lines[0].startswith("FAIL bad.yaml:14:")
    assert "doc:1#view@user:alice" in fail_lines[0]


def test_validate_zed_schema_file_and_syntax_error_position(tmp_path: Path) -> None:
    (tmp_path / "ok.zed").write_text(SCHEMA)
    (tmp_path / "broken.zed").write_text(
        "definition user {}\n\ndefinition doc {\n    relation viewer user\n}\n"
    )
    result = CliRunner().invoke(cli, ["validate", "ok.zed"])
    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == "1 passed, 0 failed"
    result = CliRunner().invoke(cli, ["validate", "broken.zed"])
    assert result.exit_code == 1
    assert any(line.startswith("FAIL broken.zed:4:") for line in lines(result))
    assert lines(result)[-1] == "0 passed, 1 failed"


def test_validate_unreadable_file_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALIDATION)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(cli, ["validate", "missing.yaml", "binary.yaml", "good.yaml"])
    assert result.exit_code == 1
    assert any(line.startswith("FAIL missing.yaml") for line in lines(result))
    assert any(line.startswith("FAIL binary.yaml") for line in lines(result))
    assert lines(result)[-1] == "4 passed, 2 failed"
    assert "Traceback" not in result.output


def test_validate_on_sqlite_uses_a_fresh_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALIDATION)
    target = tmp_path / "keep.db"
    result = CliRunner().invoke(
        cli, ["validate", "--datastore", f"sqlite:///{target}", "good.yaml", "good.yaml"]
    )
    assert result.exit_code == 0, result.output
    assert lines(result)[-1] == "8 passed, 0 failed"
    assert not target.exists()


def test_validate_warnings_and_fail_on_warn(tmp_path: Path) -> None:
    # A relation named after its own definition is one of SpiceDB's lint warnings; it still passes.
    (tmp_path / "warn.zed").write_text(
        "definition user {}\n\ndefinition doc {\n    relation viewer_doc: user\n}\n"
    )
    result = CliRunner().invoke(cli, ["validate", "warn.zed"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in lines(result) if line.startswith("warning: warn.zed: ")]
    assert len(warnings) == 1
    assert "viewer_doc" in warnings[0]
    assert lines(result)[-1] == "1 passed, 0 failed"
    result = CliRunner().invoke(cli, ["validate", "--fail-on-warn", "warn.zed"])
    assert result.exit_code == 1
    assert lines(result)[-1] == "1 passed, 0 failed"
    (tmp_path / "clean.zed").write_text(SCHEMA)
    assert CliRunner().invoke(cli, ["validate", "--fail-on-warn", "clean.zed"]).exit_code == 0


# -- demo --------------------------------------------------------------------------------------


def test_demo_runs_quickly_and_shows_every_api() -> None:
    began = time.monotonic()
    result = CliRunner().invoke(cli, ["demo"])
    elapsed = time.monotonic() - began
    assert result.exit_code == 0, (result.output, result.exception)
    assert elapsed < 10
    out = result.stdout
    assert "✔ allowed  document:design#view@user:dave" in out  # nested groups and folder inheritance
    assert "✘ denied   document:press-release#view@user:mallory" in out  # the banned exclusion
    assert "api-spec, design, forecast, handbook, press-release, roadmap" in out  # lookup-resources
    assert "user:* - {user:mallory}" in out  # lookup-subjects with a wildcard
    assert "group:backend#member -> user:carol, user:dave" in out  # expand tree
    old, new = out.split("at the old token")[1].split("at the new token")
    assert "✔ allowed  document:api-spec#edit@user:dave" in old
    assert "✘ denied   document:api-spec#edit@user:dave" in new
    assert not list(Path.cwd().glob("*.db"))  # nothing left behind


def test_demo_on_a_chosen_datastore_twice(url: str) -> None:
    for _ in range(2):
        result = CliRunner().invoke(cli, ["demo", "--datastore", url])
        assert result.exit_code == 0, (result.output, result.exception)
    assert "document:handbook#owner@user:alice" in ok(url, "export").stdout
