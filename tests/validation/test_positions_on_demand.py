"""Validating a valid project never parses a file again for positions.

Positions are built on first use by parsing the text a second time; a check
that asks for a location before it knows it will report would double the
cost of loading. Every valid fixture case is validated with that second
parse forbidden, then an invalid project shows that reporting still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest
from test_corpus import FIXTURES, build_project, case_args

from aivault_ops.manifests import yaml_positions
from aivault_ops.validation.run import validate_project

VALID_CASES = sorted(p.name for p in (FIXTURES / "valid").iterdir() if p.is_dir())


def _forbidden(text: str) -> NoReturn:
    raise AssertionError("positions were parsed while validating a valid project")


def _environment(case_dir: Path | None) -> str | None:
    args = case_args(case_dir) if case_dir else []
    return args[args.index("--env") + 1] if "--env" in args else None


@pytest.mark.parametrize("name", [None, *VALID_CASES])
def test_a_valid_project_needs_no_positions(
    name: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_dir = FIXTURES / "valid" / name if name else None
    project = build_project(case_dir, tmp_path)
    monkeypatch.setattr(yaml_positions, "_position_tables", _forbidden)
    validation = validate_project(project, environment=_environment(case_dir))
    assert list(validation.report) == []
    assert validation.policy is not None


def test_an_error_still_gets_its_position(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    credential = project / "credentials" / "internal-api.yaml"
    text = credential.read_text(encoding="utf-8")
    credential.write_text(text.replace("#INTERNAL_API_KEY", "#NOPE"), encoding="utf-8")
    validation = validate_project(project, environment=None)
    found = [str(d.location) for d in validation.report if d.code == "E-SECRET-NOT-FOUND"]
    assert found == ["credentials/internal-api.yaml:7:14"]
