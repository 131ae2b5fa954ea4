"""`run_apply` called in-process: publish, nothing to publish, dry run, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import InitProject
from repo_support import init_repo, repo

from aivault_ops.bundle import PublicKey, read_bundle_file, verify_bundle
from aivault_ops.bundle.errors import SigningKeyNotTrusted
from aivault_ops.commands.apply import run_apply
from aivault_ops.commands.keys import run_signing

__all__ = ["repo"]


def apply(repo: InitProject, **options: object) -> int:
    arguments: dict[str, object] = {
        "repo": repo.root,
        "target": repo.workdir / "bundles",
        "signing_key": repo.signing_key,
        "environment": None,
        "revision": "r",
    }
    return run_apply(**{**arguments, **options})  # type: ignore[arg-type]


def bundles(repo: InitProject) -> list[str]:
    return sorted(path.name for path in (repo.workdir / "bundles").glob("bundle-*.tar.gz"))


def test_first_apply_publishes_serial_one_after_the_plan(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(repo) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Comparing against: nothing published yet"
    assert (
        lines[-1]
        == f"Published {repo.workdir / 'bundles' / 'bundle-1.tar.gz'} (serial 1, revision r)"
    )
    assert bundles(repo) == ["bundle-1.tar.gz"]


def test_without_changes_nothing_is_published_unless_asked(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(repo) == 0
    capsys.readouterr()
    assert apply(repo) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Nothing to publish."
    assert apply(repo, always=True) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(serial 2, revision r)")
    assert bundles(repo) == ["bundle-1.tar.gz", "bundle-2.tar.gz"]


def test_expires_in_publishes_a_bundle_that_expires(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(repo) == 0
    assert apply(repo, expires_in=timedelta(days=1)) == 0
    data = read_bundle_file(repo.workdir / "bundles" / "bundle-2.tar.gz")
    key = PublicKey.parse(repo.public_key)
    manifest = verify_bundle(data, trusted_keys=[key], now=datetime.now(UTC)).manifest
    assert manifest.to_json()["expiresAt"] > datetime.now(UTC).isoformat()[:19]


def test_dry_run_names_the_bundle_it_would_publish(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(repo, dry_run=True) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Dry run: would publish bundle-1.tar.gz"
    assert bundles(repo) == []


def test_a_signing_key_the_project_does_not_trust_is_refused_before_anything_is_written(
    repo: InitProject,
) -> None:
    other = repo.workdir / "keys" / "other.pem"
    assert run_signing(out=other) == 0
    with pytest.raises(SigningKeyNotTrusted) as caught:
        apply(repo, signing_key=other)
    assert "is not in the Project's spec.trustedSigningKeys" in caught.value.message
    assert not (repo.workdir / "bundles").exists()


def test_a_project_that_trusts_no_key_publishes_with_any_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    untrusting = init_repo(tmp_path, signing=False)
    assert run_signing(out=untrusting.signing_key) == 0
    assert apply(untrusting, revision=None) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(serial 1, revision unversioned)")
