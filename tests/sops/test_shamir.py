"""Shamir over GF(2^8) (AES polynomial): split and combine agree, as sops' do."""

from __future__ import annotations

import itertools
import os

import pytest

from aivault_ops.sops import shamir


def test_field_multiplication_matches_the_aes_specification() -> None:
    assert shamir.mul(0x57, 0x83) == 0xC1
    assert shamir.mul(0x57, 0x13) == 0xFE
    assert all(shamir.mul(shamir.div(a, 7), 7) == a for a in range(256))


@pytest.mark.parametrize(("parts", "threshold"), [(2, 2), (3, 2), (5, 3), (3, 1)])
def test_any_threshold_subset_recovers_the_secret(parts: int, threshold: int) -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, parts, threshold)
    assert [share[-1] for share in shares] == list(range(1, parts + 1))
    for subset in itertools.combinations(shares, threshold):
        assert shamir.combine(list(subset)) == secret


def test_fewer_shares_than_the_threshold_give_something_else() -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, 3, 3)
    assert shamir.combine(shares[:2]) != secret


def test_duplicate_shares_are_refused() -> None:
    share = shamir.split(b"k" * 32, 2, 2)[0]
    with pytest.raises(ValueError, match="duplicate"):
        shamir.combine([share, share])
