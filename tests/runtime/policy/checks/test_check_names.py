"""The one normalisation of caller header and query names."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.policy.checks.names import NameRules, name_key, plain_name


@pytest.mark.parametrize(
    "name",
    [
        "api_key", "API_KEY", "api-key", "api.key", "api key", " api_key", "api_key ",
        "api_key\x00", "api_key\t", "api_key[]", "api_key[0]", "api_key[x][y]", "[api_key]",
        "api%5Fkey", "%61pi_key", "%2561pi_key", "%252561pi_key", "api_key%00", "api+key",
        "ＡＰＩ＿ＫＥＹ", "api\u200bkey", "api\u00adkey",
    ],
)  # fmt: skip
def test_spellings_of_one_name_share_a_key(name: str) -> None:
    assert name_key(name) == "apikey"


@pytest.mark.parametrize("name", ["apikeys", "api_key_id", "page_token", "key", "x-api-key"])
def test_different_names_keep_different_keys(name: str) -> None:
    assert name_key(name) != "apikey"


def test_plain_name_keeps_separators() -> None:
    assert plain_name(" %5FMethod[] ") == "_method"
    assert plain_name("method") != plain_name("_method")


def test_rules_return_the_listed_name_and_reason_first_group_wins() -> None:
    rules = NameRules({"auth": ["X-Api-Key"], "other": ["x_api_key", "via"]}, {"route": ["x-fw-"]})
    assert rules.match("X_API_KEY") == ("x-api-key", "auth")
    assert rules.match("Via") == ("via", "other")
    assert rules.match("X-FW-Host") == ("x-fw-*", "route")
    assert rules.match("X-Trace") is None


def test_long_names_get_the_same_key_without_the_cache() -> None:
    assert name_key("api_key" + " " * 300) == "apikey"
    assert name_key("%20" * 100 + "API.KEY") == "apikey"
