from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from cli_support import InitProject, run_cli


def test_init_creates_a_repo_that_validates(project: InitProject) -> None:
    result = run_cli("validate", "vault.d", cwd=project.workdir)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "ok: vault.d valid\n"


def test_init_writes_keys_private_and_outside_the_repo(project: InitProject) -> None:
    for key in (project.identity, project.signing_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert not key.resolve().is_relative_to(project.root.resolve())
    assert f"# public key: {project.recipient}" in project.identity.read_text()


def test_init_stores_only_the_token_hash(project: InitProject) -> None:
    everything = "".join(p.read_text() for p in project.root.rglob("*") if p.is_file())
    assert project.token not in everything
    assert hashlib.sha256(project.token.encode()).hexdigest() in everything
    assert project.public_key in (project.root / "aivault-ops.yaml").read_text()


def test_init_example_secret_decrypts_with_real_sops(project: InitProject) -> None:
    import subprocess

    result = subprocess.run(
        ["sops", "-d", "secrets/example-api.sops.yaml"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={
            "SOPS_AGE_KEY_FILE": str(project.identity),
            "SOPS_DISABLE_VERSION_CHECK": "1",
            "PATH": __import__("os").environ["PATH"],
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "EXAMPLE_API_KEY: replace-me\n"


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "vault.d").mkdir()
    (tmp_path / "vault.d" / "keep").write_text("x")
    result = run_cli("init", "vault.d", "--recipient", "age1" + "q" * 58, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "aivault-ops: error: vault.d: directory is not empty\n"


def test_init_refuses_keys_inside_the_repo(tmp_path: Path) -> None:
    result = run_cli("init", "vault.d", "--identity-out", "vault.d/id.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "aivault-ops: error: vault.d/id.txt: keys must be written outside the policy repo\n"
    )
    assert not (tmp_path / "vault.d").exists()


def test_init_with_an_existing_recipient(tmp_path: Path) -> None:
    recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
    result = run_cli("init", "repo", "--recipient", recipient, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert recipient in (tmp_path / "repo" / "aivault-ops.yaml").read_text()
    assert run_cli("validate", "repo", cwd=tmp_path).returncode == 0
