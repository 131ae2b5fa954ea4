"""`scripts/coverage_by_package.py`: the per-package branch coverage gate, on real data."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "coverage_by_package.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coverage_by_package", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def measured(tmp_path: Path) -> Path:
    """A package `pkg` (top-level modules, a subpackage, a module never imported) measured
    with branch coverage by a real `coverage run`."""
    branchy = "def f(x):\n    if x:\n        return 1\n    return 2\n"
    write(tmp_path / "pkg/__init__.py", "")
    write(tmp_path / "pkg/top.py", branchy)
    write(tmp_path / "pkg/full.py", branchy)
    write(tmp_path / "pkg/sub/__init__.py", "")
    write(tmp_path / "pkg/sub/never.py", branchy)
    write(tmp_path / "pkg/sub/helpers/loose.py", "X = 1\n")  # no __init__: belongs to pkg.sub
    write(
        tmp_path / "run.py",
        "import pkg.top, pkg.full\npkg.top.f(1)\npkg.full.f(0)\npkg.full.f(1)\n",
    )
    subprocess.run(
        [sys.executable, "-m", "coverage", "run", "--branch", "--source=pkg", "run.py"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path


def test_packages_below_the_threshold_fail_and_are_named(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script()
    code = script.main(
        ["--data-file", str(measured / ".coverage"), "--package-dir", str(measured / "pkg")]
    )
    out = capsys.readouterr().out
    assert code == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    # pkg: top.py (4 statements, 1 missed; 2 branches, 1 missed) + full.py (all 6 covered)
    assert rows["pkg"][1:6] == ["8", "1", "4", "1", "83.3%"]
    # pkg.sub: never.py (4 + 2, none run) and helpers/loose.py (1 statement, not run)
    assert rows["pkg.sub"][1:6] == ["5", "5", "2", "2", "0.0%"]
    assert out.splitlines()[-1] == "FAIL: below 90% branch coverage: pkg (83.3%), pkg.sub (0.0%)"


def test_a_lower_threshold_passes(measured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    data, package = str(measured / ".coverage"), str(measured / "pkg")
    assert script.main(["--data-file", data, "--package-dir", package, "--fail-under", "0"]) == 0
    assert capsys.readouterr().out.endswith("ok: every package at or above 0% branch coverage\n")


def test_no_data_is_an_error_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    assert script.main(["--data-file", str(tmp_path / ".coverage")]) == 2
    assert "no coverage data" in capsys.readouterr().err
