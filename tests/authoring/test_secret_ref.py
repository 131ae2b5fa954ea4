"""`--secret-ref`: FILE#KEY, a bare name, or vault:secret:NAME."""

from __future__ import annotations

import pytest

from aivault_ops.authoring.secret_ref import SecretRef, locate, parse_secret_ref
from aivault_ops.errors import AivaultError, UsageError


def test_the_three_spellings() -> None:
    assert parse_secret_ref("secrets/a.sops.yaml#KEY") == SecretRef("KEY", "secrets/a.sops.yaml")
    assert parse_secret_ref("KEY") == SecretRef("KEY")
    assert parse_secret_ref("vault:secret:KEY") == SecretRef("KEY")


@pytest.mark.parametrize("text", ["a.yaml#", "#KEY", "vault:secret:", "two words", "a#b c"])
def test_malformed_refs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_secret_ref(text)


def test_a_name_is_located_in_its_one_file() -> None:
    found = locate(SecretRef("KEY"), {"KEY": ["secrets/k.sops.yaml"]})
    assert found.render() == "secrets/k.sops.yaml#KEY"


def test_a_name_in_two_files_lists_both() -> None:
    with pytest.raises(AivaultError, match=r"a\.sops\.yaml, b\.sops\.yaml"):
        locate(SecretRef("KEY"), {"KEY": ["a.sops.yaml", "b.sops.yaml"]})


def test_an_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(AivaultError, match="did you mean 'MY_KEY'"):
        locate(SecretRef("MY_KEI"), {"MY_KEY": ["a.sops.yaml"]})
