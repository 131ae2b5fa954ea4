"""Ed25519 keys: formats, key ids, private files with mode 0600."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aivault_ops.bundle import (
    PublicKey,
    SigningKey,
    load_signing_key,
    resolve_public_key,
    save_signing_key,
)
from aivault_ops.bundle.errors import CodedError, KeyMaterialError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_public_key_round_trips_and_keyid_is_sha256_prefix() -> None:
    key = SigningKey.generate().public_key
    text = str(key)
    assert text == "ed25519:" + base64.b64encode(key.raw).decode()
    assert PublicKey.parse(text) == key
    assert PublicKey.parse(f"  {text}\n") == key
    assert key.keyid == hashlib.sha256(key.raw).hexdigest()[:16]


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("age1xyz", "E-KEY-FORMAT", "a public key looks like 'ed25519:<base64>'"),
        ("ed25519:!!!", "E-KEY-FORMAT", "the public key after 'ed25519:' is not valid base64"),
        ("ed25519:AAAA", "E-KEY-FORMAT", "an Ed25519 public key has 32 bytes, not 3"),
        ("", "E-KEY-FORMAT", "a public key looks like 'ed25519:<base64>'"),
    ],
)
def test_bad_public_keys_are_refused(text: str, code: str, message: str) -> None:
    with pytest.raises(KeyMaterialError) as info:
        PublicKey.parse(text)
    assert (info.value.code, info.value.message) == (code, message)


def test_signing_key_saved_with_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "signing.pem"
    old = os.umask(0)
    try:
        save_signing_key(key, path)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert load_signing_key(path).public_key == key.public_key


def test_existing_key_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(b"precious")
    with pytest.raises(KeyMaterialError) as info:
        save_signing_key(SigningKey.generate(), path)
    assert info.value.diagnostics() == (
        f"E-KEY-EXISTS: {path}: already exists\n  hint: pass --force to replace it"
    )
    assert path.read_bytes() == b"precious"


def test_overwrite_replaces_and_tightens_mode(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    key = SigningKey.generate()
    save_signing_key(key, path, overwrite=True)
    assert _mode(path) == 0o600
    assert load_signing_key(path).public_key == key.public_key


def test_symlink_at_key_path_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    link = tmp_path / "signing.pem"
    link.symlink_to(target)
    with pytest.raises(KeyMaterialError):
        save_signing_key(SigningKey.generate(), link, overwrite=True)
    assert target.read_bytes() == b"keep"


def test_loading_missing_or_wrong_keys_fails_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "garbage.pem"
    not_pem.write_text("hello")
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    results = []
    for path in (missing, not_pem, ec_key):
        with pytest.raises(CodedError) as info:
            load_signing_key(path)
        results.append(info.value.diagnostics())
    assert results == [
        f"E-KEY-FILE: {missing}: cannot read signing key: No such file or directory",
        f"E-KEY-FORMAT: {not_pem}: not an unencrypted PEM private key\n"
        "  hint: create one with `aivault-ops keys signing --out KEYFILE`",
        f"E-KEY-FORMAT: {ec_key}: the private key is not an Ed25519 key",
    ]


def test_repr_of_signing_key_shows_only_the_keyid() -> None:
    key = SigningKey.generate()
    assert repr(key) == f"SigningKey(keyid={key.public_key.keyid})"


def test_resolve_public_key_from_literal_or_file(tmp_path: Path) -> None:
    key = SigningKey.generate().public_key
    file = tmp_path / "trust.pub"
    file.write_text(f"{key}\n")
    assert resolve_public_key(str(key)) == key
    assert resolve_public_key(str(file)) == key
    bad = tmp_path / "bad.pub"
    bad.write_text("nonsense\n")
    with pytest.raises(KeyMaterialError) as info:
        resolve_public_key(str(bad))
    assert info.value.message == f"{bad}: a public key looks like 'ed25519:<base64>'"
    with pytest.raises(KeyMaterialError) as info:
        resolve_public_key(str(tmp_path / "nope"))
    assert info.value.message == (
        f"{tmp_path / 'nope'}: not an 'ed25519:<base64>' key and not a readable key file"
        " (No such file or directory)"
    )


def test_verify_rejects_signature_over_other_data() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"data")
    assert key.public_key.verify(signature, b"data")
    assert not key.public_key.verify(signature, b"Data")
    assert not SigningKey.generate().public_key.verify(signature, b"data")
