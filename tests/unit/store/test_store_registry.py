"""The datastore registry: built-ins, entry points, runtime registration, errors."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from zanzi.errors import InvalidArgument, Unavailable
from zanzi.store import registry
from zanzi.store.memory import MemoryDatastore
from zanzi.store.sql.sqlite import SQLiteDatastore


def test_builtin_schemes(tmp_path: Path) -> None:
    with registry.open_datastore("memory://") as ds:
        assert isinstance(ds, MemoryDatastore)
    with registry.open_datastore(f"sqlite:///{tmp_path}/x.db") as ds:
        assert isinstance(ds, SQLiteDatastore)
    with registry.open_datastore("SQLITE://:memory:") as ds:
        assert isinstance(ds, SQLiteDatastore)
    assert {"memory", "sqlite"} <= set(registry.known_schemes())


def test_builtins_are_also_declared_as_entry_points() -> None:
    names = {ep.name for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert {"memory", "sqlite"} <= names


def test_options_reach_the_factory() -> None:
    from datetime import timedelta

    with registry.open_datastore("memory://", gc_window=timedelta(seconds=7)) as ds:
        assert ds.gc_window == timedelta(seconds=7)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgument, match="known schemes: .*memory.*sqlite") as info:
        registry.open_datastore("nosuch://user:secret@host/db")
    assert "secret" not in str(info.value)
    assert info.value.details["scheme"] == "nosuch"
    assert "memory" in info.value.details["known_schemes"]
    with pytest.raises(InvalidArgument, match="scheme://"):
        registry.open_datastore("just-a-path.db")
    with pytest.raises(InvalidArgument):
        registry.open_datastore("bad scheme://x")


def test_register_and_unregister() -> None:
    calls = []

    def factory(url, **options):
        calls.append((url, options))
        return MemoryDatastore()

    registry.register("custom", factory)
    try:
        assert "custom" in registry.known_schemes()
        registry.open_datastore("custom://x", answer=42).close()
        assert calls == [("custom://x", {"answer": 42})]
    finally:
        registry.unregister("custom")
    with pytest.raises(InvalidArgument):
        registry.open_datastore("custom://x")
    with pytest.raises(InvalidArgument):
        registry.register("custom", "not callable")  # type: ignore[arg-type]


def test_entry_point_backends(monkeypatch) -> None:
    class FakeEntryPoint:
        def __init__(self, name, target):
            self.name, self._target = name, target

        def load(self):
            if self._target is None:
                raise ImportError("no module named thirdparty")
            return self._target

    def third_party(url, **options):
        return MemoryDatastore()

    fake = {"thirdparty": FakeEntryPoint("thirdparty", third_party), "broken": FakeEntryPoint("broken", None)}
    monkeypatch.setattr(registry, "_entry_points", lambda: fake)
    assert {"thirdparty", "broken", "memory", "sqlite"} <= set(registry.known_schemes())
    with registry.open_datastore("thirdparty://db") as ds:
        assert isinstance(ds, MemoryDatastore)
    with pytest.raises(Unavailable, match="could not be loaded"):
        registry.open_datastore("broken://db")
