"""Fixtures for the SOPS tests: fresh age keys and the vector identities."""

from __future__ import annotations

from pathlib import Path

import pytest
from sops_helpers import AgeKey, make_age_key, vector_environ

from aivault_ops.sops import Identities, load_identities


@pytest.fixture
def age_key(tmp_path: Path) -> AgeKey:
    """A fresh age identity for this test."""
    return make_age_key(tmp_path / "keys")


@pytest.fixture
def second_age_key(tmp_path: Path) -> AgeKey:
    """Another fresh age identity."""
    return make_age_key(tmp_path / "keys", "second.txt")


@pytest.fixture(scope="session")
def vector_identities() -> Identities:
    """Identities for all vectors."""
    return load_identities(environ=vector_environ())
