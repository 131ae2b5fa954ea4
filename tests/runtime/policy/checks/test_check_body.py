"""Request body size limit."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.body import check_body_size


def test_body_over_the_limit_is_refused_with_413() -> None:
    with pytest.raises(Refusal) as caught:
        check_body_size(10, 11, capability="x/upload")
    assert (caught.value.status, caught.value.code) == (413, "E-BODY-TOO-LARGE")
    assert caught.value.message == (
        "request body of 11 bytes exceeds the limit of 10 bytes of capability 'x/upload'"
    )


@pytest.mark.parametrize(("limit", "size"), [(10, 10), (10, 0), (None, 10**9), (0, 0)])
def test_body_within_the_limit_passes(limit: int | None, size: int) -> None:
    check_body_size(limit, size, capability="x/upload")


def test_zero_limit_refuses_any_body() -> None:
    with pytest.raises(Refusal):
        check_body_size(0, 1, capability="x/upload")
