"""`aivault-ops secrets …`: behaves like sops, never prints a value unless asked to."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from aivault_ops.main import main

CANARY = "canary-Zq7!xV-do-not-print"


@dataclass(frozen=True)
class Key:
    identity_file: Path
    recipient: str


def _keygen(path: Path) -> Key:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    return Key(path, recipient)


@dataclass
class Project:
    root: Path
    key: Key
    other: Key

    def rules(self, *recipients: str) -> None:
        rule = "  - path_regex: ^secrets/.*\\.sops\\.(yaml|json|env)$\n"
        body = f"creation_rules:\n{rule}    age: {','.join(recipients)}\n"
        (self.root / ".sops.yaml").write_text(body)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in list(os.environ):
        if name.startswith("SOPS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    key = _keygen(tmp_path / "keys" / "main.txt")
    other = _keygen(tmp_path / "keys" / "other.txt")
    root = tmp_path / "vault.d"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key.identity_file))
    project = Project(root, key, other)
    project.rules(key.recipient)
    return project


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> Run:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def sops_decrypt(path: Path, key: Key) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env.update(SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY_FILE=str(key.identity_file))
    return subprocess.run(
        ["sops", "-d", str(path)], env=env, capture_output=True, text=True, check=False
    )


def test_set_from_stdin_creates_the_default_file(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = cli(capsys, monkeypatch, "secrets", "set", "OPENAI_API_KEY", stdin=CANARY + "\n")
    assert (run.code, run.out, run.err) == (
        0,
        "created OPENAI_API_KEY in secrets/openai_api_key.sops.yaml\n",
        "",
    )
    result = sops_decrypt(project.root / "secrets" / "openai_api_key.sops.yaml", project.key)
    assert result.returncode == 0 and result.stdout == f"OPENAI_API_KEY: {CANARY}\n"


def test_set_updates_the_file_that_already_holds_the_name(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(
        capsys,
        monkeypatch,
        "secrets",
        "set",
        "A",
        "--file",
        "secrets/app.sops.json",
        "--value",
        "one",
    )
    run = cli(capsys, monkeypatch, "secrets", "set", "A", stdin="two")
    assert (run.code, run.out) == (0, "updated A in secrets/app.sops.json\n")
    run = cli(capsys, monkeypatch, "secrets", "set", "A", "--json", stdin="two")
    assert json.loads(run.out) == {
        "name": "A",
        "file": "secrets/app.sops.json",
        "status": "unchanged",
    }
    assert json.loads(
        sops_decrypt(project.root / "secrets" / "app.sops.json", project.key).stdout
    ) == {"A": "two"}


def test_set_without_a_covering_rule_asks_for_a_file(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.root / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: ^x/\n    age: {project.key.recipient}\n"
    )
    run = cli(capsys, monkeypatch, "secrets", "set", "TOKEN", stdin=CANARY)
    assert run.code == 1
    assert run.err == (
        "aivault-ops: error: no SOPS file below the current directory holds TOKEN, "
        "and no creation rule "
        "in .sops.yaml covers the default secrets/token.sops.yaml\n  hint: pass --file F\n"
    )


def test_set_refuses_an_empty_value(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = cli(capsys, monkeypatch, "secrets", "set", "A", stdin="\n")
    assert (run.code, run.err) == (
        2,
        "aivault-ops: error: refusing to store an empty value "
        "(sops never encrypts empty strings)\n",
    )


def test_list_shows_names_files_and_recipients(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "B", "--file", "secrets/b.sops.yaml", stdin=CANARY)
    cli(capsys, monkeypatch, "secrets", "set", "A", "--file", "secrets/a.sops.env", stdin=CANARY)
    run = cli(capsys, monkeypatch, "secrets", "list")
    recipient = project.key.recipient
    assert run.out == f"A\tsecrets/a.sops.env\t{recipient}\nB\tsecrets/b.sops.yaml\t{recipient}\n"
    run = cli(capsys, monkeypatch, "secrets", "list", "--json")
    assert json.loads(run.out) == [
        {"name": "A", "file": "secrets/a.sops.env", "format": "dotenv", "recipients": [recipient]},
        {"name": "B", "file": "secrets/b.sops.yaml", "format": "yaml", "recipients": [recipient]},
    ]


def test_get_needs_reveal_and_prints_the_value(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    run = cli(capsys, monkeypatch, "secrets", "get", "A")
    assert (run.code, run.out, run.err) == (
        2,
        "",
        "aivault-ops: error: secrets get prints a plaintext value; pass --reveal to confirm\n",
    )
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal")
    assert (run.code, run.out) == (0, CANARY + "\n")


def test_get_refuses_an_ambiguous_name(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", "--file", "secrets/one.sops.yaml", stdin="1")
    cli(capsys, monkeypatch, "secrets", "set", "A", "--file", "secrets/two.sops.yaml", stdin="2")
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal")
    assert (run.code, run.err) == (
        1,
        "aivault-ops: error: A is ambiguous: found in secrets/one.sops.yaml, "
        "secrets/two.sops.yaml\n"
        "  hint: pass --file F\n",
    )
    run = cli(
        capsys, monkeypatch, "secrets", "get", "A", "--reveal", "--file", "secrets/two.sops.yaml"
    )
    assert run.out == "2\n"
    run = cli(capsys, monkeypatch, "secrets", "get", "MISSING", "--reveal")
    assert run.err == "aivault-ops: error: no SOPS file below the current directory holds MISSING\n"


def test_get_with_a_wrong_or_missing_identity(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    other = project.other.identity_file
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal", "--identity", str(other))
    assert (run.code, run.err) == (
        1,
        "aivault-ops: error: secrets/a.sops.yaml: no identity matches any recipient of the file "
        f"({project.key.recipient}); identities tried from --identity {other}\n",
    )
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal")
    assert run.code == 1 and run.err.startswith(
        "aivault-ops: error: no age identity found (looked in "
    )


def test_updatekeys_adds_a_recipient(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    project.rules(project.key.recipient, project.other.recipient)
    run = cli(capsys, monkeypatch, "secrets", "updatekeys")
    assert (run.code, run.out) == (0, "secrets/a.sops.yaml: updated keys (+1 -0 recipients)\n")
    assert (
        sops_decrypt(project.root / "secrets" / "a.sops.yaml", project.other).stdout
        == f"A: {CANARY}\n"
    )
    run = cli(capsys, monkeypatch, "secrets", "updatekeys", "--json", "secrets/a.sops.yaml")
    assert json.loads(run.out) == [
        {"file": "secrets/a.sops.yaml", "changed": False, "added": [], "removed": []}
    ]


def test_rotate_reencrypts_and_sops_still_reads(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    path = project.root / "secrets" / "a.sops.yaml"
    before = path.read_text()
    run = cli(capsys, monkeypatch, "secrets", "rotate")
    assert (run.code, run.out) == (0, "secrets/a.sops.yaml: rotated data key\n")
    assert path.read_text() != before
    assert sops_decrypt(path, project.key).stdout == f"A: {CANARY}\n"


def test_tampered_file_is_one_clear_line(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    cli(capsys, monkeypatch, "secrets", "set", "B", "--file", "secrets/a.sops.yaml", stdin="other")
    path = project.root / "secrets" / "a.sops.yaml"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal")
    assert run.code == 1 and run.out == ""
    assert run.err.startswith(
        "aivault-ops: error: secrets/a.sops.yaml: MAC mismatch: the file was modified"
    )
    assert run.err.count("\n") == 1


def test_unreadable_files_are_reported_not_skipped(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    path = project.root / "secrets" / "a.sops.yaml"
    path.write_text(path.read_text().replace("version: 3.11.0", "version: ''"))
    run = cli(capsys, monkeypatch, "secrets", "list")
    assert (run.code, run.out, run.err) == (
        1,
        "no SOPS files found\n",
        "aivault-ops: error: secrets/a.sops.yaml: sops metadata has no version\n",
    )
    run = cli(capsys, monkeypatch, "secrets", "get", "A", "--reveal")
    assert run.err == (
        "aivault-ops: error: no readable SOPS file below the current directory holds A\n"
        "  hint: unreadable: secrets/a.sops.yaml: sops metadata has no version\n"
    )


def test_canary_never_appears_in_any_output(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = [cli(capsys, monkeypatch, "secrets", "set", "CANARY", stdin=CANARY)]
    outputs.append(
        cli(
            capsys,
            monkeypatch,
            "secrets",
            "set",
            "CANARY",
            "--file",
            "secrets/c.sops.env",
            stdin=CANARY,
        )
    )
    outputs.append(
        cli(
            capsys,
            monkeypatch,
            "secrets",
            "set",
            "CANARY",
            "--json",
            "--file",
            "secrets/c.sops.env",
            stdin=CANARY,
        )
    )
    for args in (
        ["list"],
        ["list", "--json"],
        ["updatekeys"],
        ["rotate", "--json"],
        ["get", "CANARY"],
    ):
        outputs.append(cli(capsys, monkeypatch, "secrets", *args))
    project.rules(project.other.recipient)
    outputs.append(cli(capsys, monkeypatch, "secrets", "updatekeys"))
    outputs.append(
        cli(
            capsys,
            monkeypatch,
            "secrets",
            "get",
            "CANARY",
            "--reveal",
            "--file",
            "secrets/c.sops.env",
        )
    )
    (project.root / "secrets" / "c.sops.env").write_text(
        (project.root / "secrets" / "c.sops.env")
        .read_text()
        .replace("CANARY=ENC[", f"CANARY={CANARY}\nX=ENC[")
    )
    outputs.append(
        cli(
            capsys, monkeypatch, "secrets", "rotate", "--identity", str(project.other.identity_file)
        )
    )
    outputs.append(cli(capsys, monkeypatch, "secrets", "list"))
    assert any(run.code != 0 for run in outputs)
    for run in outputs:
        assert CANARY not in run.out and CANARY not in run.err


def test_installed_cli_reports_errors_without_traceback(project: Project) -> None:
    (project.root / "secrets").mkdir()
    (project.root / "secrets" / "x.sops.yaml").write_text(
        f"A: {CANARY}\nsops: {{version: 3.11.0}}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aivault_ops",
            "secrets",
            "get",
            "A",
            "--reveal",
            "--file",
            "secrets/x.sops.yaml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "aivault-ops: error: secrets/x.sops.yaml: "
        "no identity matches any recipient of the file (none); "
        "identities tried from SOPS_AGE_KEY_FILE\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, monkeypatch, "secrets", "set", "A", stdin=CANARY)
    cli(capsys, monkeypatch, "secrets", "set", "B", stdin=CANARY)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run = cli(capsys, monkeypatch, "secrets", "rotate")
    assert run.code == 0
    progress = terminal.getvalue()
    assert "[1/2] secrets/a.sops.yaml" in progress and "[2/2] secrets/b.sops.yaml" in progress
    assert progress.endswith("\r\x1b[K") and CANARY not in progress
