"""Caller query parameters named like injected ones."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.checks.query import check_query
from aivault_ops.runtime.model import Refusal


@pytest.mark.parametrize("name", ["key", "KEY", "Key", "token"])
def test_injected_parameter_names_are_refused_case_insensitively(name: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_query((("q", "x"), (name, "attacker")), frozenset({"key", "token"}))
    assert (caught.value.status, caught.value.code) == (403, "E-QUERY-FORBIDDEN")
    assert caught.value.message == (
        f"query parameter {name!r} is injected by the runtime; callers may not send it"
    )


def test_other_parameters_pass_in_order() -> None:
    query = (("b", "2"), ("a", "1"), ("b", "3"))
    assert check_query(query, frozenset({"key"})) == query
    assert check_query(query, frozenset()) == query
