"""Method allow-list."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.method import check_method

ALLOWED = frozenset({"GET", "POST"})


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "get", "Get", "GET ", "TRACE", ""])
def test_methods_outside_the_allow_list_are_refused(method: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_method(ALLOWED, method, capability="x/users")
    assert (caught.value.status, caught.value.code) == (405, "E-METHOD-NOT-ALLOWED")
    assert caught.value.message == (
        f"method {method!r} is not allowed by capability 'x/users' (allowed: GET, POST)"
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_listed_methods_pass(method: str) -> None:
    check_method(ALLOWED, method, capability="x/users")
