"""`compile_project`, `sign_bundle` and `git_revision` on real repos written by `init`."""

from __future__ import annotations

import contextlib
import io
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyrage import x25519

import aivault_ops.compiled_project as compiled_project
from aivault_ops.bundle import SigningKey, verify_bundle
from aivault_ops.commands.init import run_init
from aivault_ops.compiled_project import (
    UNVERSIONED,
    compile_project,
    git_revision,
    sign_bundle,
)
from aivault_ops.errors import AivaultError, ValidationFailed
from aivault_ops.validation.run import Validation

SECRET_FILE = "secrets/example-api.sops.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    recipient = str(x25519.Identity.generate().to_public())
    with contextlib.redirect_stdout(io.StringIO()):
        run_init(directory=tmp_path / "vault.d", recipient=recipient, name="acme")
    return tmp_path / "vault.d"


def test_a_valid_repo_compiles_to_its_policy_and_the_secret_files_as_committed(
    root: Path,
) -> None:
    compiled = compile_project(root, environment=None)
    assert (compiled.policy["project"], compiled.policy["environment"]) == ("acme", None)
    assert set(compiled.policy["capabilities"]) == {"example-api/read"}
    assert compiled.secret_files == {SECRET_FILE: (root / SECRET_FILE).read_bytes()}
    assert compiled.validation.report.ok


def test_the_signed_bundle_carries_the_policy_and_the_secret_files(root: Path) -> None:
    compiled = compile_project(root, environment=None)
    key = SigningKey.generate()
    data = sign_bundle(compiled, serial=9, revision="abc", expires_at=None, signing_key=key)
    assert data == sign_bundle(compiled, serial=9, revision="abc", expires_at=None, signing_key=key)
    verified = verify_bundle(data, trusted_keys=[key.public_key], now=datetime.now(UTC))
    assert (verified.manifest.serial, verified.manifest.revision) == (9, "abc")
    assert verified.policy == compiled.policy
    assert set(verified.manifest.files) == {"policy.json", SECRET_FILE}


def test_an_invalid_repo_raises_with_the_whole_report(root: Path) -> None:
    (root / "consumers" / "agent.yaml").write_text(
        (root / "consumers" / "agent.yaml").read_text().replace("tokenSha256: ", "tokenSha256: x")
    )
    (root / "credentials" / "example-api.yaml").unlink()
    with pytest.raises(ValidationFailed) as caught:
        compile_project(root, environment=None)
    assert caught.value.message == f"{len(caught.value.report)} validation error(s)"
    assert len(caught.value.report) >= 2


def test_a_secret_file_changed_after_validation_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_validate = compiled_project.validate_project

    def validate_then_edit(path: Path, *, environment: str | None) -> Validation:
        validation = real_validate(path, environment=environment)
        with (root / SECRET_FILE).open("ab") as secret:
            secret.write(b"# edited meanwhile\n")  # as a concurrent `secrets set` would
        return validation

    monkeypatch.setattr(compiled_project, "validate_project", validate_then_edit)
    with pytest.raises(AivaultError, match=f"{SECRET_FILE}: changed while compiling"):
        compile_project(root, environment=None)


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


def test_the_revision_is_the_git_head_and_says_when_the_project_has_changes(
    root: Path, tmp_path: Path
) -> None:
    assert git_revision(root) == UNVERSIONED  # tmp_path is in no repository
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "policy")
    head = git(tmp_path, "rev-parse", "HEAD").strip()
    assert git_revision(root) == head
    (tmp_path / "elsewhere.txt").write_text("outside the project\n")
    assert git_revision(root) == head
    (root / "consumers" / "agent.yaml").write_text("# edited\n", encoding="utf-8")
    assert git_revision(root) == f"{head}+dirty"


def test_without_git_the_revision_is_unversioned(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(root))  # no git program to run
    assert git_revision(root) == UNVERSIONED


def test_operations_and_copy_sources_reach_the_policy_sorted_and_only_when_set(
    root: Path,
) -> None:
    before = compile_project(root, environment=None).policy["capabilities"]["example-api/read"]
    assert "operations" not in before and "copySourcePrefixes" not in before
    capability = root / "capabilities/example-api.yaml"
    capability.write_text(
        capability.read_text()
        + "    operations: [Svc.Query, Svc.GetItem]\n"
        + "    copySourcePrefixes: [/bucket/incoming/]\n"
    )
    compiled = compile_project(root, environment=None).policy["capabilities"]["example-api/read"]
    assert compiled["operations"] == ["Svc.GetItem", "Svc.Query"]
    assert compiled["copySourcePrefixes"] == ["/bucket/incoming/"]
