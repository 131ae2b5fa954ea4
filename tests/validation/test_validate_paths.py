"""`validate [DIR] [FILES…]`: which project is validated, and how paths are shown."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_corpus import BASE, build_project, run_validate


def test_files_are_mapped_to_their_project_once(tmp_path: Path) -> None:
    """pre-commit passes file names; each file's whole project is validated, once."""
    build_project(None, tmp_path)
    result = run_validate(
        tmp_path,
        "proj/credentials/openai.yaml",
        "proj/secrets/openai.sops.yaml",
        "proj/.sops.yaml",
        "proj/aivault-ops.yaml",
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: proj valid\n", "")


def test_a_file_reports_errors_anywhere_in_its_project(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    (project / "consumers/agent.yaml").write_text(
        (project / "consumers/agent.yaml").read_text().replace("openai/chat-completions", "x/*")
    )
    result = run_validate(tmp_path, "proj/credentials/openai.yaml")
    assert result.stdout.splitlines() == [
        "proj/consumers/agent.yaml:7:36: E-CONSUMER-GRANT: grant 'x/*' matches no capability"
        " of this project (see `aivault-ops capabilities list`)"
    ]
    assert (result.returncode, result.stderr) == (1, "1 error(s)\n")


def test_two_projects_are_validated_and_reported_together(tmp_path: Path) -> None:
    build_project(None, tmp_path)
    shutil.copytree(BASE, tmp_path / "other")
    (tmp_path / "other/credentials/openai.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Credential\nmetadata: {name: openai}\n"
        "spec: {provider: openai, capabilities: [openai/chat-completions, openai/models]}\n"
        "extra: 1\n"
    )
    result = run_validate(tmp_path, "proj", "other/credentials/openai.yaml")
    assert result.stdout.splitlines() == [
        "other/consumers/agent.yaml:7:36: E-CONSUMER-GRANT: grant 'openai/chat-completions'"
        " matches no capability of this project (see `aivault-ops capabilities list`)",
        "other/credentials/openai.yaml:5:1: E-SCHEMA-UNKNOWN-FIELD: unknown field 'extra' in"
        " document (allowed: apiVersion, kind, metadata, spec)",
    ]
    assert result.returncode == 1


def test_paths_are_shown_relative_to_the_current_directory(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    (project / "consumers/agent.yaml").write_text("kind: Consumer\n")
    inside = run_validate(project, ".")
    assert inside.stdout.splitlines() == [
        "consumers/agent.yaml:1:1: E-API-VERSION: apiVersion must be 'aivault.dev/v1'"
    ]
    below = run_validate(project / "consumers", "..")
    assert below.stdout.splitlines() == [
        "../consumers/agent.yaml:1:1: E-API-VERSION: apiVersion must be 'aivault.dev/v1'"
    ]


def test_default_directory_is_vault_d(tmp_path: Path) -> None:
    shutil.copytree(BASE, tmp_path / "vault.d")
    result = run_validate(tmp_path)
    assert (result.returncode, result.stdout) == (0, "ok: vault.d valid\n")


def test_default_directory_is_the_current_one_without_vault_d(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    result = run_validate(project)
    assert (result.returncode, result.stdout) == (0, "ok: . valid\n")


def test_a_file_outside_any_project_is_skipped(tmp_path: Path) -> None:
    build_project(None, tmp_path)
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    result = run_validate(tmp_path, "notes.yaml")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "ok: no policy repo among the given files\n",
        "",
    )


def test_files_outside_any_project_are_skipped_next_to_project_files(tmp_path: Path) -> None:
    """What pre-commit passes in a repo that holds vault.d/ and other YAML files."""
    shutil.copytree(BASE, tmp_path / "vault.d")
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/ci.yml").write_text("on: push\n")
    (tmp_path / "package.json").write_text("{}\n")
    result = run_validate(
        tmp_path, ".github/workflows/ci.yml", "package.json", "vault.d/credentials/openai.yaml"
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: vault.d valid\n", "")


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = run_validate(tmp_path, "nowhere")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "aivault-ops: error: nowhere: no such file or directory\n"


def test_the_example_vault_d_validates() -> None:
    repo = Path(__file__).resolve().parents[2]
    result = run_validate(repo, "vault.d")
    assert (result.returncode, result.stdout) == (0, "ok: vault.d valid\n")
