"""The fixture corpus: every validation error class, with its exact file, line and column.

`tests/fixtures/base/` is a small valid policy repo. Each case under
`tests/fixtures/{valid,invalid}/<case>/` is an overlay on it: files to add or
replace, an optional `DELETE` (base paths to remove, one a line), an optional
`ARGS` (extra command-line arguments) and, for invalid cases, `expected.txt`
with the exact output lines. The project is copied to `<tmp>/proj/` and
`validate proj` runs from `<tmp>` as a real subprocess, so every path in the
output starts with `proj/`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aivault_ops
from aivault_ops.main import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BASE = FIXTURES / "base"
CONTROL_FILES = {"expected.txt", "ARGS", "DELETE"}
LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<code>E-[A-Z0-9-]+): (?P<message>.+)$"
)

# Cases that show a product bug: they assert the correct behaviour and are
# expected to fail until the product is fixed (strict: a fix makes them pass loudly).
PRODUCT_BUGS: dict[str, str] = {
    "template-loop-positions": "positions in a *.yaml.j2 are lines of the rendered text (a"
    " limitation docs/validation-errors.md states): a {% for %} loop yields 21:3 and 31:3 in a"
    " 12-line file; they should map to the source line",
    "sops-plaintext-json": "E-SOPS-PLAINTEXT in a JSON SOPS file points at the key"
    " (column 3), in YAML and dotenv files at the value",
}


# Every value held by the corpus' SOPS files (encrypted or slipped in as plaintext): no
# diagnostic may ever print one.
SECRET_VALUES = (
    "test-internal-key-not-real",
    "sk-test-not-real",
    "sk-test-second-not-real",
    "shpat-test-not-real",
    "fal-test-not-real",
    "reports-test-not-real",
    "billing-test-not-real",
    "plaintext-slipped-in",
    "plaintext-in-dotenv",
    "sk-plaintext-in-git",
    "sk-plaintext-key-committed-by-mistake",
    "plain-value",
    "aws-wrong-test-not-real",
    "aws-good-test-not-real",
)


def _cases(kind: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / kind).iterdir() if p.is_dir())


def _param(kind: str, name: str) -> object:
    marks = []
    if name in PRODUCT_BUGS:
        marks.append(pytest.mark.xfail(reason=PRODUCT_BUGS[name], strict=True))
    return pytest.param(name, id=name, marks=marks)


def build_project(case_dir: Path | None, workdir: Path) -> Path:
    """Copy base to `workdir/proj` and apply the case's overlay; return the project dir."""
    project = workdir / "proj"
    shutil.copytree(BASE, project)
    if case_dir is None:
        return project
    delete = case_dir / "DELETE"
    if delete.is_file():
        for line in delete.read_text(encoding="utf-8").splitlines():
            if line.strip():
                (project / line.strip()).unlink()
    for source in sorted(case_dir.rglob("*")):
        relative = source.relative_to(case_dir)
        if source.is_file() and relative.as_posix() not in CONTROL_FILES:
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return project


def case_args(case_dir: Path) -> list[str]:
    args = case_dir / "ARGS"
    return shlex.split(args.read_text(encoding="utf-8")) if args.is_file() else []


def run_validate(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "aivault_ops", "validate", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def expected_lines(case_dir: Path) -> list[str]:
    text = (case_dir / "expected.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


def test_base_fixture_is_valid(tmp_path: Path) -> None:
    build_project(None, tmp_path)
    result = run_validate(tmp_path, "proj")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: proj valid\n", "")


def test_base_fixture_json_is_an_empty_list(tmp_path: Path) -> None:
    build_project(None, tmp_path)
    result = run_validate(tmp_path, "proj", "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


@pytest.mark.parametrize("name", [_param("valid", n) for n in _cases("valid")])
def test_valid_case(name: str, tmp_path: Path) -> None:
    case_dir = FIXTURES / "valid" / name
    build_project(case_dir, tmp_path)
    result = run_validate(tmp_path, "proj", *case_args(case_dir))
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: proj valid\n", "")


@pytest.mark.parametrize("name", [_param("invalid", n) for n in _cases("invalid")])
def test_invalid_case(name: str, tmp_path: Path) -> None:
    case_dir = FIXTURES / "invalid" / name
    expected = expected_lines(case_dir)
    build_project(case_dir, tmp_path)
    result = run_validate(tmp_path, "proj", *case_args(case_dir))
    assert result.stdout.splitlines() == expected
    assert result.returncode == 1
    assert result.stderr == f"{len(expected)} error(s)\n"
    assert not [v for v in SECRET_VALUES if v in result.stdout + result.stderr]


@pytest.mark.parametrize("name", [_param("invalid", n) for n in _cases("invalid")])
def test_invalid_case_json(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json` gives the same diagnostics as objects (run in-process: the CLI path is above)."""
    case_dir = FIXTURES / "invalid" / name
    build_project(case_dir, tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "proj", "--json", *case_args(case_dir)])
    expected = []
    for line in expected_lines(case_dir):
        match = LINE.match(line)
        assert match is not None, f"not path:line:col: CODE: message: {line}"
        expected.append(
            {
                "path": match["path"],
                "line": int(match["line"]),
                "column": int(match["column"]),
                "code": match["code"],
                "message": match["message"],
            }
        )
    assert (code, json.loads(capsys.readouterr().out)) == (1, expected)


def test_every_invalid_case_is_sorted_and_well_formed() -> None:
    for name in _cases("invalid"):
        lines = expected_lines(FIXTURES / "invalid" / name)
        assert lines, name
        assert all(LINE.match(line) for line in lines), name
        keys = [
            (m["path"], int(m["line"]), int(m["column"]), m["code"], m["message"])
            for m in map(LINE.match, lines)
            if m is not None
        ]
        assert keys == sorted(keys), name


def _emitted_codes() -> set[str]:
    """Every `"E-…"` literal in the validation code (loader, schema check, resolver, SOPS)."""
    package = Path(aivault_ops.__file__).resolve().parent
    sources = [
        package / name for name in ("schema_check.py", "registry_lint.py", "registry_files.py")
    ]
    for folder in ("manifests", "resolve", "validation"):
        sources.extend(sorted((package / folder).glob("*.py")))
    emitted = set()
    for source in sources:
        emitted.update(re.findall(r'"(E-[A-Z0-9-]+)"', source.read_text(encoding="utf-8")))
    return emitted


def test_every_validation_error_code_is_documented() -> None:
    docs = Path(aivault_ops.__file__).resolve().parent.parent / "docs" / "validation-errors.md"
    documented = set(re.findall(r"`(E-[A-Z0-9-]+)`", docs.read_text(encoding="utf-8")))
    assert sorted(_emitted_codes() - documented) == []


# A corpus overlay cannot hold a symbolic link; this code has its own named test in
# tests/validation/test_secret_hygiene.py.
CODES_TESTED_ELSEWHERE = {
    "E-SECRET-OUTSIDE",
    # registry rules, one by one: tests/test_registry_lint.py
    "E-REGISTRY-AUTH",
    "E-REGISTRY-DUPLICATE-CAPABILITY",
    "E-REGISTRY-DUPLICATE-PROVIDER",
    "E-REGISTRY-EMPTY",
    "E-REGISTRY-JSON",
    "E-REGISTRY-SCHEMA-REF",
}


def test_every_validation_error_code_has_a_case() -> None:
    """Each code the validator can emit is exercised by at least one corpus case."""
    emitted = _emitted_codes()
    covered = set()
    for name in _cases("invalid"):
        covered.update(
            m["code"] for m in map(LINE.match, expected_lines(FIXTURES / "invalid" / name)) if m
        )
    assert sorted(emitted - covered - CODES_TESTED_ELSEWHERE) == []
