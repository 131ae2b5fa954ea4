"""`aivault-ops keys signing|age`, run as a user runs it."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pyrage import x25519

from aivault_ops.bundle import load_signing_key


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aivault_ops", *args], cwd=cwd, capture_output=True, text=True
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_signing_key_prints_public_key_and_keyid(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "signing", "--out", "ci.pem")
    assert result.returncode == 0
    public = load_signing_key(tmp_path / "ci.pem").public_key
    assert result.stdout == f"{public}\n"
    assert result.stderr == f"wrote signing key ci.pem (mode 0600), keyid {public.keyid}\n"
    assert _mode(tmp_path / "ci.pem") == 0o600


def test_signing_key_json(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "signing", "--out", "ci.pem", "--json")
    public = load_signing_key(tmp_path / "ci.pem").public_key
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "publicKey": str(public),
        "keyid": public.keyid,
        "keyFile": "ci.pem",
    }


def test_signing_key_is_not_overwritten_without_force(tmp_path: Path) -> None:
    assert _run(tmp_path, "keys", "signing", "--out", "ci.pem").returncode == 0
    before = (tmp_path / "ci.pem").read_bytes()
    result = _run(tmp_path, "keys", "signing", "--out", "ci.pem")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: E-KEY-EXISTS: ci.pem: already exists\n"
        "  hint: pass --force to replace it\n"
    )
    assert (tmp_path / "ci.pem").read_bytes() == before
    forced = _run(tmp_path, "keys", "signing", "--out", "ci.pem", "--force")
    assert forced.returncode == 0
    assert (tmp_path / "ci.pem").read_bytes() != before
    assert _mode(tmp_path / "ci.pem") == 0o600


@pytest.mark.parametrize("kind", ["signing", "age"])
def test_key_into_missing_directories_creates_each_0700(tmp_path: Path, kind: str) -> None:
    (tmp_path / "open").mkdir(mode=0o755)
    result = _run(tmp_path, "keys", kind, "--out", "open/no/such/key")
    assert result.returncode == 0, result.stderr
    assert _mode(tmp_path / "open") == 0o755
    assert [_mode(tmp_path / d) for d in ("open/no", "open/no/such")] == [0o700, 0o700]
    assert _mode(tmp_path / "open/no/such/key") == 0o600


def test_key_under_a_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    result = _run(tmp_path, "keys", "signing", "--out", "plain/ci.pem")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: E-KEY-FILE: plain/ci.pem: cannot write: Not a directory\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys"], "aivault-ops keys: error: the following arguments are required: KIND\n"),
        (
            ["keys", "signing"],
            "aivault-ops keys signing: error: the following arguments are required: --out\n",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.endswith(message)


_IDENTITY_FILE = re.compile(
    r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n"
    r"# public key: (age1[0-9a-z]{58})\n"
    r"(AGE-SECRET-KEY-1[0-9A-Z]{58})\n"
)


def test_age_identity_to_stdout_like_age_keygen(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "age")
    assert result.returncode == 0
    match = _IDENTITY_FILE.fullmatch(result.stdout)
    assert match is not None
    recipient, secret = match.groups()
    assert str(x25519.Identity.from_str(secret).to_public()) == recipient
    assert result.stderr == f"Public key: {recipient}\n"
    assert list(tmp_path.iterdir()) == []


def test_age_identity_to_file(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "age", "--out", "runtime.agekey")
    identity_file = tmp_path / "runtime.agekey"
    match = _IDENTITY_FILE.fullmatch(identity_file.read_text())
    assert match is not None
    assert result.returncode == 0
    assert result.stdout == f"{match.group(1)}\n"
    assert result.stderr == "wrote age identity runtime.agekey (mode 0600)\n"
    assert _mode(identity_file) == 0o600
    again = _run(tmp_path, "keys", "age", "--out", "runtime.agekey")
    assert again.returncode == 1
    assert again.stderr.startswith("aivault-ops: error: E-KEY-EXISTS: runtime.agekey: ")


def test_age_identity_json(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "age", "--out", "id.agekey", "--json")
    recipient = str(
        x25519.Identity.from_str((tmp_path / "id.agekey").read_text().splitlines()[2]).to_public()
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {"recipient": recipient, "identityFile": "id.agekey"}


def test_age_identity_json_without_out_includes_the_identity(tmp_path: Path) -> None:
    result = _run(tmp_path, "keys", "age", "--json")
    output = json.loads(result.stdout)
    assert (result.returncode, result.stderr) == (0, "")
    assert sorted(output) == ["identity", "identityFile", "recipient"]
    assert output["identityFile"] is None
    assert str(x25519.Identity.from_str(output["identity"]).to_public()) == output["recipient"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("age") is None, reason="needs the age binary")
def test_age_identity_works_with_the_real_age_tools(tmp_path: Path) -> None:
    recipient = _run(tmp_path, "keys", "age", "--out", "id.agekey").stdout.strip()
    keygen = subprocess.run(
        ["age-keygen", "-y", "id.agekey"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert keygen.stdout == f"{recipient}\n"
    encrypted = subprocess.run(
        ["age", "-r", recipient], input=b"hello", capture_output=True, check=True
    ).stdout
    decrypted = subprocess.run(
        ["age", "-d", "-i", "id.agekey"],
        cwd=tmp_path,
        input=encrypted,
        capture_output=True,
        check=True,
    ).stdout
    assert decrypted == b"hello"


def test_public_prints_the_public_half_of_a_signing_key(tmp_path: Path) -> None:
    made = _run(tmp_path, "keys", "signing", "--out", "ci.pem")
    result = _run(tmp_path, "keys", "public", "ci.pem")
    assert (result.returncode, result.stdout, result.stderr) == (0, made.stdout, "")
    assert result.stdout.startswith("ed25519:")


def test_public_prints_the_recipient_of_an_age_identity(tmp_path: Path) -> None:
    made = _run(tmp_path, "keys", "age", "--out", "id.txt")
    result = _run(tmp_path, "keys", "public", "id.txt")
    assert (result.returncode, result.stdout, result.stderr) == (0, made.stdout, "")
    assert "AGE-SECRET-KEY" not in result.stdout


def test_public_refuses_what_is_not_a_key_without_echoing_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    result = _run(tmp_path, "keys", "public", "notes.txt")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: E-KEY-FORMAT: notes.txt: neither an Ed25519 PEM private key"
        " nor an age identity file\n"
    )
