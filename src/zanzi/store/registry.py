"""Datastore URL scheme -> factory: the built-in backends, entry points and runtime registrations.

A factory is a callable ``factory(url: str, **options) -> Datastore``. Lookup order for a
scheme: :func:`register` calls first, then the built-ins (``memory``, ``sqlite``, ``postgresql``
and its alias ``postgres``), then entry points in the group ``zanzi.stores`` (so a third-party
backend is a separate distribution that declares
``[project.entry-points."zanzi.stores"] mystore = "pkg.module:open_mystore"``).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from zanzi.errors import InvalidArgument, Unavailable
from zanzi.store.base import Datastore

__all__ = [
    "DatastoreFactory",
    "ENTRY_POINT_GROUP",
    "known_schemes",
    "open_datastore",
    "register",
    "unregister",
]

DatastoreFactory = Callable[..., Datastore]
ENTRY_POINT_GROUP = "zanzi.stores"

_BUILTIN: dict[str, str] = {
    "memory": "zanzi.store.memory:open_memory",
    "sqlite": "zanzi.store.sql.sqlite:open_sqlite",
    "postgresql": "zanzi.store.sql.postgres:open_postgres",
    "postgres": "zanzi.store.sql.postgres:open_postgres",
}
_registered: dict[str, DatastoreFactory] = {}
_lock = threading.Lock()


def _check_scheme(scheme: str) -> str:
    if not isinstance(scheme, str) or not scheme or not all(c.isalnum() or c in "+-." for c in scheme):
        raise InvalidArgument(f"invalid datastore scheme {scheme!r}")
    return scheme.lower()


def register(scheme: str, factory: DatastoreFactory) -> None:
    """Make ``open_datastore("<scheme>://...")`` call ``factory``; replaces an earlier
    registration (and shadows a built-in or entry point) for that scheme."""
    if not callable(factory):
        raise InvalidArgument(f"datastore factory for {scheme!r} is not callable")
    with _lock:
        _registered[_check_scheme(scheme)] = factory


def unregister(scheme: str) -> None:
    """Undo :func:`register` for ``scheme`` (no error if it was not registered)."""
    with _lock:
        _registered.pop(_check_scheme(scheme), None)


def _entry_points() -> dict[str, Any]:
    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    """Every scheme :func:`open_datastore` accepts, sorted."""
    with _lock:
        names = set(_registered)
    return sorted(names | set(_BUILTIN) | set(_entry_points()))


def _load(target: str) -> DatastoreFactory:
    module_name, _, attribute = target.partition(":")
    factory: DatastoreFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


def _factory(scheme: str) -> DatastoreFactory | None:
    with _lock:
        factory = _registered.get(scheme)
    if factory is not None:
        return factory
    try:
        if scheme in _BUILTIN:
            return _load(_BUILTIN[scheme])
        entry_point = _entry_points().get(scheme)
        if entry_point is None:
            return None
        loaded: DatastoreFactory = entry_point.load()
        return loaded
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"the datastore backend for {scheme!r} could not be loaded: {exc}") from exc


def open_datastore(url: str, **options: Any) -> Datastore:
    """Open the datastore that ``url`` names (``memory://``, ``sqlite:///path.db``...).

    Options go to the backend's factory unchanged. Raises
    :class:`~zanzi.errors.InvalidArgument` for a URL without a scheme or with an unknown one
    (the message lists the known schemes; the URL itself is not echoed, as it may hold a
    password), :class:`~zanzi.errors.Unavailable` if a backend fails to import, and whatever
    the backend raises for its own URL and options.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgument(
            f"a datastore URL looks like scheme://...; known schemes: {', '.join(known_schemes())}"
        )
    scheme = _check_scheme(url.split("://", 1)[0])
    factory = _factory(scheme)
    if factory is None:
        raise InvalidArgument(
            f"unknown datastore scheme {scheme!r}; known schemes: {', '.join(known_schemes())}",
            scheme=scheme,
            known_schemes=known_schemes(),
        )
    return factory(url, **options)
