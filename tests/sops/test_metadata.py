"""Metadata without a private key: names, recipients, rules, plaintext that should be encrypted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sops_helpers import RECIPIENT_1, RECIPIENT_2, VECTORS

from aivault_ops.sops import (
    MalformedSopsFile,
    NotASopsFile,
    PlaintextLeaf,
    UnsupportedFormat,
    decrypt_bytes,
    is_sops_document,
    load_identities,
    read_metadata,
)


@pytest.mark.parametrize(
    ("name", "format_", "names", "recipients"),
    [
        (
            "flat.sops.yaml",
            "yaml",
            ("username", "password", "port", "timeout", "enabled", "empty", "nothing"),
            (RECIPIENT_1,),
        ),
        ("multidoc.sops.yaml", "yaml", ("name", "value", "items"), (RECIPIENT_1,)),
        (
            "data.sops.json",
            "json",
            (
                "service",
                "port",
                "pi",
                "tiny",
                "active",
                "missing",
                "blank",
                "tags",
                "db",
                "ünïcode_kéy",
            ),
            (RECIPIENT_1, RECIPIENT_2),
        ),
        (
            "app.sops.env",
            "dotenv",
            (
                "DB_USER",
                "DB_PASS",
                "PORT",
                "EMPTY",
                "MULTI",
                "export EXPORTED",
                "PUBLIC_unencrypted",
            ),
            (RECIPIENT_1,),
        ),
        ("blob.sops.bin", "binary", ("data",), (RECIPIENT_1,)),
        ("shamir.sops.yaml", "yaml", ("shared_secret", "level"), (RECIPIENT_1, RECIPIENT_2)),
    ],
)
def test_vectors_metadata(
    name: str, format_: str, names: tuple[str, ...], recipients: tuple[str, ...]
) -> None:
    meta = read_metadata(VECTORS / name)
    assert (meta.format, meta.secret_names, meta.recipients) == (format_, names, recipients)
    assert meta.fully_encrypted and meta.version == "3.11.0"


def test_ssh_recipient_is_reported_verbatim() -> None:
    expected = (VECTORS / "ssh-test-ed25519.pub").read_text().strip()
    assert read_metadata(VECTORS / "ssh.sops.yaml").recipients == (expected,)


def test_rules_and_key_groups_are_exposed() -> None:
    meta = read_metadata(VECTORS / "mac-only.sops.yaml")
    assert (meta.rules.kind, meta.rules.value, meta.rules.mac_only_encrypted) == (
        "unencrypted_regex",
        "^(user|host|port)$",
        True,
    )
    shamir = read_metadata(VECTORS / "shamir.sops.yaml")
    assert shamir.key_groups == ((RECIPIENT_1,), (RECIPIENT_2,)) and shamir.shamir_threshold == 2


def test_injected_plaintext_is_reported_with_its_position() -> None:
    meta = read_metadata(VECTORS / "tampered" / "plaintext-injected.sops.yaml")
    assert meta.plaintext_leaves == (PlaintextLeaf(("injected",), 9, 11),)


def test_plaintext_in_nested_yaml_and_lists(tmp_path: Path) -> None:
    source = (VECTORS / "nested.sops.yaml").read_text()
    source = source.replace("        cpu: ENC[", "        cpu: 500m\n        cpu2: ENC[", 1)
    source = source.replace(
        "    - ENC[AES256_GCM,data:KRJPE14=", "    - leaked\n    - ENC[AES256_GCM,data:KRJPE14=", 1
    )
    path = tmp_path / "n.sops.yaml"
    path.write_text(source)
    assert read_metadata(path).plaintext_leaves == (
        PlaintextLeaf(("app", "limits", "cpu"), 8, 14),
        PlaintextLeaf(("servers",), 12, 7),
    )


def test_plaintext_allowed_by_the_rules_is_not_reported() -> None:
    assert read_metadata(VECTORS / "encrypted-regex.sops.yaml").plaintext_leaves == ()
    assert read_metadata(VECTORS / "nested.sops.yaml").plaintext_leaves == ()


def test_plaintext_in_json_and_dotenv(tmp_path: Path) -> None:
    json_text = (
        (VECTORS / "data.sops.json")
        .read_text()
        .replace('"pi": "ENC[', '"pi": 3.5, "pi2": "ENC[', 1)
    )
    (tmp_path / "d.sops.json").write_text(json_text)
    assert read_metadata(tmp_path / "d.sops.json").plaintext_leaves == (
        PlaintextLeaf(("pi",), 4, 2),
    )
    env_text = (VECTORS / "app.sops.env").read_text().replace("EMPTY=\n", "EMPTY=\nLEAK=oops\n")
    (tmp_path / "a.sops.env").write_text(env_text)
    assert read_metadata(tmp_path / "a.sops.env").plaintext_leaves == (
        PlaintextLeaf(("LEAK",), 6, 6),
    )


def test_not_a_sops_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("password: hunter2\n")
    with pytest.raises(NotASopsFile) as caught:
        read_metadata(path)
    assert str(caught.value) == f"{path}: not a SOPS file (no top-level sops metadata)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: [hunter2\n",
            "invalid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        ("- hunter2\n", "the top level of a document must be a mapping"),
        ("", "the file is empty; it must contain at least one document"),
        ("1: hunter2\nsops: {}\n", "line 1: keys must be strings (found a int key)"),
        ("a: hunter2\na: hunter3\n", "line 2: duplicate key"),
        ("a: 18446744073709551615\nsops: {}\n", "line 1: integer above int64"),
        ("a: x\nsops: {lastmodified: x}\n", "sops metadata has no version"),
        (
            "a: x\nsops: {version: 3.11.0, encrypted_comment_regex: x}\n",
            "sops metadata: encrypted_comment_regex is not supported",
        ),
        (
            "a: x\nsops: {version: 3.11.0, age: [{recipient: r}]}\n",
            "an age entry lacks recipient or enc",
        ),
    ],
)
def test_malformed_files_are_explained_without_values(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.sops.yaml"
    path.write_text(text)
    with pytest.raises((MalformedSopsFile, UnsupportedFormat)) as caught:
        read_metadata(path)
    assert str(caught.value) == f"{path}: {message}"
    assert "hunter" not in str(caught.value).replace(str(tmp_path), "")


def test_invalid_json_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "bad.sops.json"
    path.write_text('{"a": "hunter2",}')
    with pytest.raises(MalformedSopsFile) as caught:
        read_metadata(path)
    expected = "invalid JSON: line 1, column 17: Expecting property name enclosed in double quotes"
    assert str(caught.value) == f"{path}: {expected}"


def test_unsupported_format_name() -> None:
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    with pytest.raises(UnsupportedFormat) as caught:
        decrypt_bytes(b"", format="ini", identities=identities, source_name="x.ini")
    assert str(caught.value) == "x.ini: unsupported format 'ini' (yaml, json, dotenv, binary)"


def test_is_sops_document() -> None:
    assert is_sops_document({"a": 1, "sops": {"version": "3.11.0"}})
    assert not is_sops_document({"a": 1, "sops": "x"})
    assert not is_sops_document(["sops"])


def test_ini_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.ini"
    path.write_text("[sops]\nversion = 3.11.0\n")
    with pytest.raises(UnsupportedFormat) as caught:
        read_metadata(path)
    assert (
        str(caught.value)
        == f"{path}: INI files are not supported (use YAML, JSON, dotenv or binary)"
    )
