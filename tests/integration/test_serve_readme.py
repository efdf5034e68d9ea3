"""The README's first command starts the server, and its three-line client example works
against it."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from support.paths import REPO
from support.zanzi_server import ZanziServer

README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match is not None
    return match.group(1)


def test_readme_first_command_serves_and_the_client_example_works(tmp_path: Path) -> None:
    first = re.search(r"```\n(.*?)\n```", _section("Try it"), re.S)
    assert first is not None
    serve = first.group(1).split("&&")[-1].strip()
    words = shlex.split(serve)
    assert words[:2] == [".venv/bin/zanzi", "serve"]
    example = re.search(r"```python\n(.*?)```", _section("The server"), re.S)
    assert example is not None
    code = example.group(1)
    assert len(code.strip().splitlines()) == 3
    key = words[words.index("--grpc-preshared-key") + 1]

    server = ZanziServer(tmp_path, key=key)
    # the README's command as written (default datastore ./zanzi.db, default workers), on a free port
    server.args = [
        sys.executable,
        "-m",
        "zanzi",
        *words[1:],
        "--grpc-addr",
        server.grpc_addr,
        "--log-format",
        "json",
    ]
    with server:
        namespace: dict[str, object] = {}
        exec(compile(code.replace("localhost:50051", server.grpc_addr), "README.md", "exec"), namespace)
        client = namespace["client"]
        from authzed.api.v1 import ReadSchemaRequest

        assert client.ReadSchema(ReadSchemaRequest()).schema_text == "definition user {}"  # type: ignore[attr-defined]
    assert (tmp_path / "zanzi.db").exists()
