"""Nearest names for "did you mean"."""

from __future__ import annotations

import pytest

from aivault_ops.suggest import did_you_mean


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("acmee", ["acme", "example-api"], " (did you mean 'acme'?)"),
        ("acme/order", ["acme/orders", "acme/users"], " (did you mean 'acme/orders'?)"),
        ("github/wiki", ["github/gists", "github/issues", "github/orgs"], ""),
        ("OPENAI_API_KEY", ["INTERNAL_API_KEY"], ""),
        ("strpe", ["stripe", "tripo"], " (did you mean 'stripe'?)"),
        ("stag", ["stage", "stags", "staging"], " (did you mean 'stage' or 'stags'?)"),
        ("example-api/reed", ["example-api/read"], " (did you mean 'example-api/read'?)"),
        ("example-api/raed", ["example-api/read"], " (did you mean 'example-api/read'?)"),
        ("ab", ["ba", "abc", "b", "xy"], " (did you mean 'abc', 'b' or 'ba'?)"),
        ("ab", ["ab"], ""),
        ("x", [], ""),
    ],
)
def test_did_you_mean(name: str, known: list[str], expected: str) -> None:
    assert did_you_mean(name, known) == expected
