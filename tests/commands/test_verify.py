"""`aivault-ops verify BUNDLE --trust PUB…`, run as a user runs it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.bundles import policy

from aivault_ops.bundle import SigningKey, build_bundle, load_signing_key


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aivault_ops", *args], cwd=cwd, capture_output=True, text=True
    )


def _bundle(key: SigningKey, **overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "policy_json": json.dumps(policy()).encode(),
        "secret_files": {"secrets/a.sops.yaml": b"a: ENC[]\n", "secrets/b.sops.yaml": b"b\n"},
        "serial": 12,
        "revision": "9f1c2e7",
        "environment": "prod",
        "expires_at": None,
        "signing_key": key,
    }
    return build_bundle(**{**arguments, **overrides})


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, SigningKey]:
    """A directory with a signing key made by the CLI and its public key in `ci.pub`."""
    made = _run(tmp_path, "keys", "signing", "--out", "ci.pem")
    assert made.returncode == 0
    (tmp_path / "ci.pub").write_text(made.stdout)
    return tmp_path, load_signing_key(tmp_path / "ci.pem")


def test_valid_bundle_human_output(project: tuple[Path, SigningKey]) -> None:
    cwd, key = project
    (cwd / "bundle-12.tar.gz").write_bytes(_bundle(key))
    result = _run(cwd, "verify", "bundle-12.tar.gz", "--trust", "ci.pub")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "bundle-12.tar.gz: OK\n"
        "  serial:      12\n"
        "  revision:    9f1c2e7\n"
        "  environment: prod\n"
        f"  keyid:       {key.public_key.keyid}\n"
        "  expiresAt:   never\n"
        "  files:       3\n"
    )


def test_valid_bundle_json_with_literal_key_and_expiry(project: tuple[Path, SigningKey]) -> None:
    cwd, key = project
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    (cwd / "b.tar.gz").write_bytes(_bundle(key, expires_at=expiry, environment=None))
    other = SigningKey.generate().public_key
    result = _run(cwd, "verify", "b.tar.gz", "--trust", str(other), str(key.public_key), "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "bundle": "b.tar.gz",
        "ok": True,
        "serial": 12,
        "revision": "9f1c2e7",
        "environment": None,
        "keyid": key.public_key.keyid,
        "expiresAt": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fileCount": 3,
    }


def _tampered(bundle: bytes) -> bytes:
    """The bundle with policy.json replaced (repacked with tarfile)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as target,
    ):
        for member in source.getmembers():
            handle = source.extractfile(member)
            assert handle is not None
            data = b'{"consumers":{"evil":{}}}' if member.name == "policy.json" else handle.read()
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_tampered_bundle_exits_1_with_path_code_and_reason(
    project: tuple[Path, SigningKey],
) -> None:
    cwd, key = project
    (cwd / "bad.tar.gz").write_bytes(_tampered(_bundle(key)))
    result = _run(cwd, "verify", "bad.tar.gz", "--trust", "ci.pub")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(
        "aivault-ops: error: bad.tar.gz: E-BUNDLE-DIGEST: 'policy.json': sha256 "
    )
    assert result.stderr.count("\n") == 1


def test_untrusted_signer(project: tuple[Path, SigningKey]) -> None:
    cwd, _ = project
    stranger = SigningKey.generate()
    (cwd / "b.tar.gz").write_bytes(_bundle(stranger))
    result = _run(cwd, "verify", "b.tar.gz", "--trust", "ci.pub")
    assert result.returncode == 1
    assert result.stderr == (
        "aivault-ops: error: b.tar.gz: E-BUNDLE-UNTRUSTED: signed only by untrusted key(s)"
        f" {stranger.public_key.keyid}\n"
        "  hint: pass the signer's public key with --trust, if you trust it\n"
    )


def test_expired_bundle(project: tuple[Path, SigningKey]) -> None:
    cwd, key = project
    (cwd / "b.tar.gz").write_bytes(_bundle(key, expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
    result = _run(cwd, "verify", "b.tar.gz", "--trust", "ci.pub")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "aivault-ops: error: b.tar.gz: E-BUNDLE-EXPIRED: expired at 2020-01-01T00:00:00Z (now "
    )


def test_failure_in_json_mode_reports_on_stdout_too(project: tuple[Path, SigningKey]) -> None:
    cwd, _ = project
    (cwd / "junk.tar.gz").write_bytes(b"not a bundle")
    result = _run(cwd, "verify", "junk.tar.gz", "--trust", "ci.pub", "--json")
    message = "not a gzip file, or corrupt (incorrect header check)"
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "bundle": "junk.tar.gz",
        "ok": False,
        "error": "E-BUNDLE-ARCHIVE",
        "message": message,
    }
    assert result.stderr == f"aivault-ops: error: junk.tar.gz: E-BUNDLE-ARCHIVE: {message}\n"


def test_missing_bundle_file(project: tuple[Path, SigningKey]) -> None:
    cwd, _ = project
    result = _run(cwd, "verify", "nope.tar.gz", "--trust", "ci.pub")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "aivault-ops: error: nope.tar.gz: E-BUNDLE-READ: cannot read: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        ("ed25519:AAAA", "E-KEY-FORMAT: an Ed25519 public key has 32 bytes, not 3"),
        (
            "missing.pub",
            "E-KEY-FILE: missing.pub: not an 'ed25519:<base64>' key and not a readable key file"
            " (No such file or directory)",
        ),
        (
            "ci.pem",
            "E-KEY-FORMAT: ci.pem: is a private key; --trust takes the public half\n"
            "  hint: print it with `aivault-ops keys public ci.pem`",
        ),
        (
            "ci.pub.txt",
            "E-KEY-FORMAT: ci.pub.txt: a public key looks like 'ed25519:<base64>'\n"
            "  hint: print the public half of a signing key: `aivault-ops keys public KEYFILE`",
        ),
    ],
)
def test_bad_trust_argument(project: tuple[Path, SigningKey], trust: str, message: str) -> None:
    cwd, key = project
    (cwd / "b.tar.gz").write_bytes(_bundle(key))
    (cwd / "ci.pub.txt").write_text("not a key\n")
    result = _run(cwd, "verify", "b.tar.gz", "--trust", trust)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"aivault-ops: error: {message}\n"


def test_trust_is_required(tmp_path: Path) -> None:
    result = _run(tmp_path, "verify", "b.tar.gz")
    assert result.returncode == 2
    assert result.stderr.endswith(
        "aivault-ops verify: error: the following arguments are required: --trust\n"
    )


def test_a_signed_bundle_whose_policy_the_runtime_cannot_read_fails(
    project: tuple[Path, SigningKey],
) -> None:
    cwd, key = project
    unreadable = {**policy(), "format": "aivault-ops/policy@99"}
    (cwd / "b.tar.gz").write_bytes(_bundle(key, policy_json=json.dumps(unreadable).encode()))
    result = _run(cwd, "verify", "b.tar.gz", "--trust", "ci.pub", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "E-BUNDLE-POLICY"
    assert "E-BUNDLE-POLICY" in result.stderr and "Traceback" not in result.stderr
