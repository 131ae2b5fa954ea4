"""`aivault-ops secrets create`: aivault's spelling of `secrets set`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aivault_ops.main import main

CANARY = "canary-create-Zq7!xV-do-not-print"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("SOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    identity = tmp_path / "id.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1]
        for line in identity.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    root = tmp_path / "vault.d"
    root.mkdir()
    (root / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: ^secrets/.*\\.sops\\.yaml$\n    age: {recipient}\n"
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(identity))
    return root


def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _decrypted(path: Path) -> str:
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}
    return subprocess.run(
        ["sops", "-d", str(path)], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_create_from_stdin_writes_what_set_writes(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _cli(
        capsys, monkeypatch, "secrets", "create", "--name", "MY_KEY", stdin=CANARY + "\n"
    )
    assert (code, out, err) == (0, "created MY_KEY in secrets/my_key.sops.yaml\n", "")
    assert _decrypted(repo / "secrets" / "my_key.sops.yaml") == f"MY_KEY: {CANARY}\n"


def test_create_with_value_warns_about_shell_history(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("secrets", "create", "--name", "K", "--value", CANARY, "--scope", "global")
    code, out, err = _cli(capsys, monkeypatch, *args)
    assert code == 0 and out == "created K in secrets/k.sops.yaml\n"
    assert "shell history" in err and CANARY not in out + err
    assert _decrypted(repo / "secrets" / "k.sops.yaml") == f"K: {CANARY}\n"


def test_create_refuses_any_other_scope(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("secrets", "create", "--name", "K", "--scope", "workspace")
    code, out, err = _cli(capsys, monkeypatch, *args, stdin=CANARY)
    assert code == 2 and out == ""
    assert "the only scope is `global`" in err and "--env" in err and CANARY not in err
    assert not (repo / "secrets").exists()


def test_help_names_the_only_scope(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _cli(capsys, monkeypatch, "secrets", "create", "--help")
    assert code == 0 and "only `global`" in out and "environments" in out
