"""`aivault-ops registry lint`: the built-in registry, a repo's registry/, given files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_support import run_cli

from aivault_ops.main import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOOD = FIXTURES / "valid/private-registry/registry/internal-api.json"
BAD = FIXTURES / "invalid/private-registry-lint/registry/acme.json"


def test_builtin_registry_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "lint", "--builtin"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("registry lint: 44 file(s), ok")


def test_a_broken_file_is_reported_with_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    shutil.copy(BAD, folder)
    shutil.copy(GOOD, folder)
    assert main(["registry", "lint", str(folder / "acme.json")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("acme.json:" in line for line in lines)
    assert any(":13:12: E-REGISTRY-DUPLICATE: hosts lists a value twice" in line for line in lines)
    assert any(
        ":23:20: E-REGISTRY-UNSORTED: capabilities.0.allow.methods" in line for line in lines
    )


def test_files_are_linted_with_their_siblings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed file that duplicates an unchanged sibling's provider is caught."""
    folder = tmp_path / "registry"
    folder.mkdir()
    shutil.copy(GOOD, folder / "internal-api.json")
    copy = json.loads(GOOD.read_text())
    copy["capabilities"][0]["id"] = "internal-api/users"
    (folder / "copy.json").write_text(json.dumps(copy, indent=2))
    assert main(["registry", "lint", "--json", str(folder / "copy.json")]) == 1
    codes = {item["code"] for item in json.loads(capsys.readouterr().out)}
    assert codes == {
        "E-REGISTRY-FILE-NAME",
        "E-REGISTRY-DUPLICATE-PROVIDER",
        "E-REGISTRY-DUPLICATE-CAPABILITY",
    }


def test_without_files_the_repo_registry_folder_is_linted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "registry").mkdir()
    shutil.copy(GOOD, tmp_path / "registry")
    assert main(["registry", "lint", "--dir", str(tmp_path)]) == 0
    assert "1 file(s), ok" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("registry", "lint", "notes.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "aivault-ops: error: notes.txt: not a provider .json file\n"
    result = run_cli("registry", "lint", "--builtin", "x.json", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        2,
        "aivault-ops: error: give FILES or --builtin, not both\n",
    )
