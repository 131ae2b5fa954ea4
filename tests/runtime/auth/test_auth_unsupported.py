"""Strategy names this runtime does not know fail closed for their credential."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.auth import build_injection, is_supported, strategy_of
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret


@pytest.mark.parametrize(
    "auth",
    [
        {"kerberos": {"realm": "EXAMPLE.COM"}},
        "nonsense",
        {"header": {}, "query": {}},
        None,
    ],
)
def test_unsupported_strategies_answer_501(auth: object) -> None:
    assert not is_supported(auth)
    with pytest.raises(AuthUnavailable) as caught:
        build_injection("google", "google", auth, {"secret": Secret("0123456789")})
    assert (caught.value.status, caught.value.code) == (501, "E-AUTH-UNSUPPORTED")
    assert caught.value.message == (
        "credential 'google' uses an auth strategy this runtime does not support"
    )


def test_strategy_names_follow_the_registry_spelling() -> None:
    assert strategy_of("basic") == ("basic", "basic")
    assert strategy_of({"query": {"param_name": "key"}}) == ("query", {"param_name": "key"})
    assert is_supported({"multi_query": []})
