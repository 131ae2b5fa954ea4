"""`run_compile` and the options it shares with other commands, called in-process."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import InitProject
from repo_support import repo

from aivault_ops.bundle import PublicKey, verify_bundle
from aivault_ops.commands._common import (
    display_prefix,
    expires_at,
    find_project_roots,
    parse_duration,
    project_dir,
)
from aivault_ops.commands.compile import run_compile
from aivault_ops.errors import UsageError, ValidationFailed

__all__ = ["repo"]


def _verify(repo: InitProject, data: bytes):  # type: ignore[no-untyped-def]
    key = PublicKey.parse(repo.public_key)
    return verify_bundle(data, trusted_keys=[key], now=datetime.now(UTC))


def test_writes_a_signed_bundle_with_the_given_serial_revision_and_expiry(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    out = repo.workdir / "b.tar.gz"
    code = run_compile(
        repo=repo.root,
        out=out,
        signing_key=repo.signing_key,
        environment=None,
        serial=3,
        revision="r1",
        expires_in=timedelta(days=2),
    )
    data = out.read_bytes()
    assert (code, capsys.readouterr().out) == (0, f"wrote {out} (serial 3, {len(data)} bytes)\n")
    manifest = _verify(repo, data).manifest
    assert (manifest.serial, manifest.revision) == (3, "r1")
    expiry = datetime.fromisoformat(manifest.to_json()["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=2) - timedelta(minutes=5) < expiry - datetime.now(UTC) <= timedelta(2)


def test_default_repo_is_vault_d_and_an_unversioned_tree_records_unversioned(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.workdir)
    code = run_compile(
        repo=None, out=Path("b.tar.gz"), signing_key=repo.signing_key, environment=None, serial=1
    )
    assert code == 0
    manifest = _verify(repo, (repo.workdir / "b.tar.gz").read_bytes()).manifest
    assert (manifest.revision, manifest.to_json().get("expiresAt")) == ("unversioned", None)


def test_a_serial_below_one_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--serial must be a positive integer"):
        run_compile(
            repo=tmp_path / "missing",
            out=tmp_path / "b",
            signing_key=tmp_path / "missing.pem",
            environment=None,
            serial=0,
        )


def test_an_invalid_repo_prints_every_diagnostic_relative_to_the_cwd_and_writes_nothing(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capability = repo.root / "capabilities/example-api.yaml"
    capability.write_text(
        capability.read_text().replace("credential: example-api", "credential: nope")
    )
    monkeypatch.chdir(repo.workdir)
    with pytest.raises(ValidationFailed):
        run_compile(
            repo=repo.root, out=Path("b"), signing_key=repo.signing_key, environment=None, serial=1
        )
    out = capsys.readouterr().out
    assert out.startswith("vault.d/capabilities/example-api.yaml:")
    assert "nope" in out
    assert not (repo.workdir / "b").exists()


def test_a_repo_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        project_dir(tmp_path / "file")


def test_without_vault_d_the_default_repo_is_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert project_dir(None) == Path()
    assert find_project_roots([]) == [Path()]
    (tmp_path / "vault.d").mkdir()
    assert project_dir(None) == Path("vault.d")


def test_files_pick_their_nearest_project_and_files_outside_any_are_skipped(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo.workdir)
    (repo.workdir / "README.md").write_text("not policy\n")
    roots = find_project_roots(
        [
            Path("vault.d/capabilities/example-api.yaml"),
            Path("vault.d/consumers/agent.yaml"),
            Path("README.md"),
            Path("keys"),
        ]
    )
    assert roots == [Path("vault.d"), Path("keys")]
    with pytest.raises(UsageError, match="no such file or directory"):
        find_project_roots([Path("vault.d/missing.yaml")])


def test_display_prefix_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_prefix(tmp_path) == ""
    assert display_prefix(tmp_path / "a" / "b") == "a/b/"
    assert display_prefix(tmp_path.parent) == f"..{os.sep}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600s", 3600), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "1.5h", "3y", "1 d"])
def test_malformed_durations_are_argparse_type_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        parse_duration(text)


def test_expires_at_is_now_plus_the_duration_in_whole_seconds() -> None:
    assert expires_at(None) is None
    at = expires_at(timedelta(hours=1))
    assert at is not None and at.microsecond == 0
    assert timedelta(minutes=59) < at - datetime.now(UTC) <= timedelta(hours=1)
