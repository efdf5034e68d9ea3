"""Relationship stores with revisions: one contract, several backends, one conformance suite."""

from __future__ import annotations

from zanzi.store.registry import open_datastore, register

__all__ = ["open_datastore", "register"]
