"""The backend-neutral conformance suite: every datastore, built in or third party, passes it.

Use it from a test module by subclassing :class:`DatastoreConformance` and providing a pytest
fixture named ``factory`` that returns a callable opening a *new, empty* datastore::

    import pytest
    from zanzi.store.conformance import DatastoreConformance

    @pytest.fixture
    def factory(tmp_path):
        def make(**options):            # options: gc_window=timedelta, clock=callable
            return open_mystore(f"mystore://{tmp_path}/{uuid4()}", **options)
        return make

    class TestMyStore(DatastoreConformance):
        pass

The factory must accept the keyword options ``gc_window`` (a :class:`~datetime.timedelta`) and
``clock`` (a callable returning the current aware datetime; the suite passes a
:class:`FakeClock` so it can move time without sleeping). The suite closes every store it opens.

Tests skip on :class:`~zanzi.store.base.Capabilities` flags, never on backend names. A backend
that cannot support a category yet declares it, with the reason, in
:attr:`DatastoreConformance.unsupported` (like SQLAlchemy's testing requirements):
``unsupported = {"gc": "collection runs in the database's own vacuum"}``. Categories:
``watch``, ``gc``, ``expiration``, ``concurrency``, ``future_revision``.

Beyond :mod:`zanzi.store.base`, the suite holds backends to these documented behaviours:
``Writer.write`` is all-or-nothing per call; a CREATE over an expired relationship succeeds; a
TOUCH identical to the live row changes nothing (no change is reported); updates of one key in
one write apply in order; operations on a closed datastore raise
:class:`~zanzi.errors.Unavailable`; a transaction opened inside another on the same thread
raises :class:`~zanzi.errors.FailedPrecondition` instead of deadlocking; a revision stays valid
while it was the newest at some instant inside the GC window.
"""

from __future__ import annotations

from zanzi.store.conformance._base import DatastoreFactory, FakeClock
from zanzi.store.conformance.concurrency import ConcurrencyTests
from zanzi.store.conformance.history import HistoryTests
from zanzi.store.conformance.reads import ReadTests
from zanzi.store.conformance.revisions import RevisionTests
from zanzi.store.conformance.writes import WriteTests

__all__ = [
    "ConcurrencyTests",
    "DatastoreConformance",
    "DatastoreFactory",
    "FakeClock",
    "HistoryTests",
    "ReadTests",
    "RevisionTests",
    "WriteTests",
]


class DatastoreConformance(RevisionTests, WriteTests, ReadTests, HistoryTests, ConcurrencyTests):
    """The whole suite. Subclass it in a ``Test...`` class and provide a ``factory`` fixture
    (or subclass only some groups)."""
