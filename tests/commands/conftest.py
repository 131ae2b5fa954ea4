"""Fixtures for command tests: a fresh policy repo in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import InitProject, make_project


@pytest.fixture
def project(tmp_path: Path) -> InitProject:
    (tmp_path / "keys").mkdir()
    return make_project(tmp_path)
