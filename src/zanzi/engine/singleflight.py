"""Singleflight: identical questions asked at the same time are answered once.

The first caller of a key computes; callers that arrive while it runs wait for its answer (or
its exception) instead of repeating the work -- Zanzibar's lock table (paper section 3.2.5).
Keys must name the whole question, revision included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("error", "result", "waiter")

    def __init__(self) -> None:
        self.result: T | None = None
        self.error: BaseException | None = None
        # Made by the first follower only: a call nobody else asks costs no event.
        self.waiter: threading.Event | None = None


class SingleFlight(Generic[T]):
    """Deduplicates concurrent calls with the same key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}
        self.shared = 0  # calls answered by another caller's computation

    def do(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
                waiter = None
            else:
                waiter = flight.waiter
                if waiter is None:
                    waiter = flight.waiter = threading.Event()
        if waiter is not None:  # a follower: the leader sets the event after leaving the table
            waiter.wait()
            self.shared += 1
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = compute()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
                waiter = flight.waiter
            if waiter is not None:
                waiter.set()
