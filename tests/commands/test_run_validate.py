"""`run_validate` called in-process: projects, files, text and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import InitProject
from repo_support import repo

from aivault_ops.commands.validate import run_validate

__all__ = ["repo"]


def break_capability(repo: InitProject) -> None:
    capability = repo.root / "capabilities" / "example-api.yaml"
    capability.write_text(
        capability.read_text().replace("credential: example-api", "credential: x")
    )


def test_a_valid_repo_is_ok(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.workdir)
    assert run_validate(paths=[], environment=None) == 0
    assert capsys.readouterr() == ("ok: vault.d valid\n", "")
    assert run_validate(paths=[Path("vault.d")], environment=None, as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_problems_are_listed_with_a_count_on_stderr(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    break_capability(repo)
    monkeypatch.chdir(repo.workdir)
    assert (
        run_validate(paths=[Path("vault.d/capabilities/example-api.yaml")], environment=None) == 1
    )
    out, err = capsys.readouterr()
    assert out.startswith("vault.d/capabilities/example-api.yaml:")
    assert err == f"{len(out.splitlines())} error(s)\n"
    assert run_validate(paths=[], environment=None, as_json=True) == 1
    [first, *_] = json.loads(capsys.readouterr().out)
    assert first["path"] == "vault.d/capabilities/example-api.yaml"


def test_files_in_no_policy_repo_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("workflow.yaml").write_text("on: push\n")
    assert run_validate(paths=[Path("workflow.yaml")], environment=None) == 0
    assert capsys.readouterr().out == "ok: no policy repo among the given files\n"
    assert run_validate(paths=[Path("workflow.yaml")], environment=None, as_json=True) == 0
    assert capsys.readouterr().out == "[]\n"
