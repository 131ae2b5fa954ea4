from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
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


def _scratch_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "SOPS_DISABLE_VERSION_CHECK": "1",
    }


def _shell(
    command: str, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A command line as a user pastes it (`aivault-ops` is this interpreter's module)."""
    shim = cwd / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "aivault-ops").write_text(f'#!/bin/sh\nexec {sys.executable} -m aivault_ops "$@"\n')
    (shim / "aivault-ops").chmod(0o755)
    path = f"{shim}:{env['PATH']}"
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env={**env, "PATH": path},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_init_creates_missing_key_directories_0700(tmp_path: Path) -> None:
    env = _scratch_home(tmp_path)
    home = Path(env["HOME"])
    result = _shell(
        "aivault-ops init vault.d --identity-out ~/.config/aivault/runtime-age.txt"
        " --signing-key-out ~/.config/aivault/signing.pem",
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    for directory in (".config", ".config/aivault", ".config/aivault-ops"):
        assert stat.S_IMODE((home / directory).stat().st_mode) == 0o700, directory
    for key in ("runtime-age.txt", "signing.pem"):
        assert stat.S_IMODE((home / ".config/aivault" / key).stat().st_mode) == 0o600


def test_init_next_commands_work_when_pasted(tmp_path: Path) -> None:
    env = _scratch_home(tmp_path)
    init = _shell("aivault-ops init vault.d --identity-out ~/keys/age.txt", tmp_path, env)
    assert init.returncode == 0, init.stderr
    config = Path(env["XDG_CONFIG_HOME"]) / "aivault-ops" / "config.json"
    assert json.loads(config.read_text()) == {
        "identityFiles": [str(Path(env["HOME"]) / "keys/age.txt")]
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    lines = init.stdout.splitlines()
    steps = lines[lines.index(next(x for x in lines if x.startswith("Next:"))) + 1 :]
    assert steps == [
        "  (cd vault.d && aivault-ops secrets set EXAMPLE_API_KEY)",
        "  aivault-ops validate vault.d",
    ]
    for step in steps:
        result = _shell(step.strip(), tmp_path, env, stdin="sk-real-value\n")
        assert result.returncode == 0, (step, result.stderr)
    got = _shell("cd vault.d && aivault-ops secrets get EXAMPLE_API_KEY --reveal", tmp_path, env)
    assert got.stdout == "sk-real-value\n"


def test_init_records_each_identity_once(tmp_path: Path) -> None:
    env = _scratch_home(tmp_path)
    for repo in ("one", "two"):
        result = run_cli("init", repo, "--identity-out", "id.txt", "--force", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
    config = Path(env["XDG_CONFIG_HOME"]) / "aivault-ops" / "config.json"
    assert json.loads(config.read_text()) == {"identityFiles": [str(tmp_path / "id.txt")]}


def test_init_refuses_an_existing_key_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "id.txt").write_text("keep")
    result = run_cli("init", "repo", "--identity-out", "id.txt", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: E-KEY-EXISTS: id.txt: already exists\n"
        "  hint: pass --force to replace it\n"
    )
    assert (tmp_path / "id.txt").read_text() == "keep"
    forced = run_cli("init", "repo", "--identity-out", "id.txt", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "id.txt").read_text().startswith("# created: ")


def test_init_force_never_replaces_a_non_empty_repo(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "keep").write_text("x")
    result = run_cli("init", "repo", "--identity-out", "id.txt", "--force", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "aivault-ops: error: repo: directory is not empty\n"
    assert not (tmp_path / "id.txt").exists()
