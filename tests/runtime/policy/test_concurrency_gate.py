"""`maxConcurrent` bookkeeping: places per capability, refused when full, given back."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.errors import ConcurrencyLimited
from aivault_ops.runtime.policy.concurrency import ConcurrencyGate


def test_places_are_counted_per_capability_and_refused_when_full() -> None:
    gate = ConcurrencyGate()
    first, second = gate.enter("a/x", 2), gate.enter("a/x", 2)
    with pytest.raises(ConcurrencyLimited) as caught:
        gate.enter("a/x", 2)
    assert (caught.value.status, caught.value.code, caught.value.verdict) == (
        503,
        "E-CONCURRENCY-LIMIT",
        "deny",
    )
    assert caught.value.retry_after == "1"
    with gate.enter("b/y", 1):  # another capability has places of its own
        assert gate.in_flight("b/y") == 1
    assert gate.in_flight("b/y") == 0
    with first:
        pass
    assert gate.in_flight("a/x") == 1
    with gate.enter("a/x", 2):
        assert gate.in_flight("a/x") == 2
    with second:
        pass
    assert gate.in_flight("a/x") == 0


def test_a_place_is_given_back_when_the_request_fails() -> None:
    gate = ConcurrencyGate()
    with pytest.raises(RuntimeError), gate.enter("a/x", 1):
        raise RuntimeError("upstream gone")
    with gate.enter("a/x", 1):
        assert gate.in_flight("a/x") == 1


def test_a_capability_without_a_limit_is_never_counted() -> None:
    gate = ConcurrencyGate()
    places = [gate.enter("a/x", None) for _ in range(1000)]
    assert gate.in_flight("a/x") == 0
    for place in places:
        with place:
            pass
    assert gate.in_flight("a/x") == 0


def test_a_lower_limit_after_a_reload_counts_the_requests_still_in_flight() -> None:
    gate = ConcurrencyGate()
    held = [gate.enter("a/x", 3) for _ in range(3)]
    with pytest.raises(ConcurrencyLimited):
        gate.enter("a/x", 2)
    for place in held:
        with place:
            pass
    with gate.enter("a/x", 2):
        pass
