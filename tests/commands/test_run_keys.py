"""`run_signing`, `run_age` and `run_public` called in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyrage import x25519

from aivault_ops.bundle import PublicKey, load_signing_key
from aivault_ops.commands.keys import age_identity_file, run_age, run_public, run_signing


def test_signing_key_prints_its_public_key_and_writes_a_private_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sk.pem"
    assert run_signing(out=out) == 0
    public, err = capsys.readouterr()
    key = load_signing_key(out)
    assert public == f"{key.public_key}\n"
    assert err == f"wrote signing key {out} (mode 0600), keyid {key.public_key.keyid}\n"
    assert out.stat().st_mode & 0o777 == 0o600
    assert run_public(file=out) == 0
    assert capsys.readouterr().out == public


def test_signing_key_json_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sk.pem"
    assert run_signing(out=out) == 0
    with pytest.raises(Exception, match="exists"):
        run_signing(out=out)
    capsys.readouterr()
    assert run_signing(out=out, force=True, as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["keyFile"] == str(out)
    assert PublicKey.parse(document["publicKey"]).keyid == document["keyid"]


def test_age_identity_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "id.txt"
    assert run_age(out=out) == 0
    recipient, err = capsys.readouterr()
    identity = x25519.Identity.from_str(out.read_text().splitlines()[-1])
    assert recipient == f"{identity.to_public()}\n"
    assert err == f"wrote age identity {out} (mode 0600)\n"
    assert run_public(file=out) == 0
    assert capsys.readouterr().out == recipient
    assert run_age(out=out, force=True, as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"recipient": document["recipient"], "identityFile": str(out)}


def test_age_identity_to_stdout_like_age_keygen(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_age(out=None) == 0
    text, err = capsys.readouterr()
    comment, public, secret = text.splitlines()
    assert comment.startswith("# created: ")
    recipient = str(x25519.Identity.from_str(secret).to_public())
    assert (public, err) == (f"# public key: {recipient}", f"Public key: {recipient}\n")
    assert run_age(out=None, as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["identityFile"], document["recipient"]) == (None, document["recipient"])
    assert document["identity"].startswith("AGE-SECRET-KEY-1")


def test_identity_file_text() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert age_identity_file("AGE-SECRET-KEY-1X", "age1y", created) == (
        "# created: 2026-01-02T03:04:05Z\n# public key: age1y\nAGE-SECRET-KEY-1X\n"
    )
