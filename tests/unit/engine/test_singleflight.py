"""Singleflight: concurrent identical questions share one computation and its outcome."""

from __future__ import annotations

import threading
import time

import pytest

from zanzi.engine.singleflight import SingleFlight


def test_concurrent_callers_share_one_computation() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = []
    start = threading.Barrier(5)

    def compute() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []

    def caller() -> None:
        start.wait()
        results.append(flight.do("k", compute))

    threads = [threading.Thread(target=caller) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 5
    assert len(calls) == 1
    assert flight.shared == 4


def test_errors_reach_every_waiter_and_the_next_call_computes_again() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = threading.Event()

    def failing() -> int:
        gate.wait(1)
        raise ValueError("boom")

    errors: list[BaseException] = []

    def caller() -> None:
        try:
            flight.do("k", failing)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert len(errors) == 3
    assert flight.do("k", lambda: 7) == 7
    with pytest.raises(ValueError):
        flight.do("other", lambda: int("x"))
