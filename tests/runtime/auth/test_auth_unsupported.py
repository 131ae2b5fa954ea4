"""Strategies this runtime does not implement fail closed for their credential."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.auth import build_injection, is_supported, strategy_of
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret


@pytest.mark.parametrize(
    "auth",
    [
        {"o_auth2": {"grant_type": "refresh_token", "token_endpoint": "https://x"}},
        {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}},
        {"hmac": {"algorithm": "sha256", "header_name": "x-sig", "value_template": "{{secret}}"}},
        "mtls",
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
