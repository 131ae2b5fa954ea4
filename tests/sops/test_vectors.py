"""Every reference vector made by the real sops decrypts to its expected values and MAC."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from sops_helpers import VECTORS

from aivault_ops.sops import (
    Identities,
    MacMismatch,
    NoMatchingIdentity,
    ValueTampered,
    decrypt_file,
    load_identities,
)
from aivault_ops.sops.block import parse_block
from aivault_ops.sops.crypt import Decryptor
from aivault_ops.sops.stores import format_for, parse
from aivault_ops.sops.tree import Comment, SopsTime, TreeList, TreeMap, Value

EXPECTED = json.loads((VECTORS / "expected.json").read_text(encoding="utf-8"))
VECTOR_NAMES = sorted(name for name in EXPECTED if not name.startswith("_"))


def _typed(value: object) -> object:
    """Expected-value markers turned into our tree's types, lists with comments kept."""
    if isinstance(value, dict):
        if "$comment" in value:
            return ("comment", value["$comment"])
        if "$time" in value:
            return SopsTime(value["$time"])
        if "$bytes_b64" in value:
            return base64.b64decode(value["$bytes_b64"])
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return value


def _ours(value: Value | Comment) -> object:
    """Our tree as plain data with list comments kept as ("comment", text)."""
    if isinstance(value, TreeMap):
        return {entry.key: _ours(entry.value) for entry in value.entries()}
    if isinstance(value, TreeList):
        return [_ours(item) for item in value.items]
    if isinstance(value, Comment):
        return ("comment", value.text)
    return value


def _strict(value: object) -> object:
    """Make bool/number types part of equality (True != 1, but 8443 == 8443.0)."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return value


def _map_comments(value: Value, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, TreeMap):
        for item in value.items:
            if isinstance(item, Comment):
                found.append((":".join(path) + ":", item.text))
            else:
                found.extend(_map_comments(item.value, (*path, item.key)))
    elif isinstance(value, TreeList):
        for child in value.values():
            found.extend(_map_comments(child, path))
    return found


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_decrypts_to_expected_values(name: str, vector_identities: Identities) -> None:
    decrypted = decrypt_file(VECTORS / name, vector_identities)
    expected = EXPECTED[name]
    assert decrypted.data_key.hex() == expected["data_key_hex"]
    groups = [key.recipient for group in decrypted.block.groups for key in group]
    flat = [
        r for item in expected["recipients"] for r in (item if isinstance(item, list) else [item])
    ]
    assert groups == flat
    assert _strict([_ours(doc) for doc in decrypted.documents]) == _strict(
        _typed(expected["documents"])
    )
    comments = [(line["aad"], line["text"]) for line in expected.get("comment_lines", [])]
    assert [c for doc in decrypted.documents for c in _map_comments(doc)] == comments


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_mac_is_recomputed_exactly(name: str, vector_identities: Identities) -> None:
    path = VECTORS / name
    raw = parse(path.read_bytes(), format_for(path), name)
    block = parse_block(raw.metadata, name)
    walker = Decryptor(
        bytes.fromhex(EXPECTED[name]["data_key_hex"]),
        block.rule,
        name,
        binary=raw.format == "binary",
    )
    for document in raw.documents:
        walker.document(document)
    assert walker.digest() == EXPECTED[name]["mac_hex"]


def test_binary_vector_matches_sops_output_byte_for_byte(vector_identities: Identities) -> None:
    decrypted = decrypt_file(VECTORS / "blob.sops.bin", vector_identities)
    assert decrypted.secrets()["data"].reveal() == (VECTORS / "decrypted" / "blob.bin").read_bytes()


def _tampered(name: str) -> str:
    return f"{VECTORS / 'tampered' / name}"


ALTERED = (
    "MAC mismatch: the MAC or lastmodified was modified outside sops "
    "(the stored MAC cannot be decrypted)"
)
TAMPERED = [
    (
        "value.sops.yaml",
        ValueTampered,
        "password: value failed to decrypt (modified outside sops, or its key was renamed)",
    ),
    (
        "renamed-key.sops.yaml",
        ValueTampered,
        "passwd: value failed to decrypt (modified outside sops, or its key was renamed)",
    ),
    (
        "plaintext-injected.sops.yaml",
        ValueTampered,
        "injected: expected an encrypted value (ENC[…]) but found plaintext",
    ),
    (
        "mac.sops.yaml",
        MacMismatch,
        ALTERED,
    ),
    (
        "lastmodified.sops.yaml",
        MacMismatch,
        ALTERED,
    ),
    (
        "reordered.sops.yaml",
        MacMismatch,
        "MAC mismatch: the file was modified outside sops "
        "(file has 74AA182CBC19…, computed 217A338BBF22…)",
    ),
    (
        "removed-value.sops.yaml",
        MacMismatch,
        "MAC mismatch: the file was modified outside sops "
        "(file has 74AA182CBC19…, computed F1C32F8F8EE5…)",
    ),
]


@pytest.mark.parametrize(("name", "error", "message"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_vector_fails_with_the_right_error(
    name: str, error: type[Exception], message: str, vector_identities: Identities
) -> None:
    with pytest.raises(error) as caught:
        decrypt_file(VECTORS / "tampered" / name, vector_identities)
    assert str(caught.value) == f"{_tampered(name)}: {message}"


def test_tampered_messages_never_contain_plaintext(vector_identities: Identities) -> None:
    for name, error, _message in TAMPERED:
        with pytest.raises(error) as caught:
            decrypt_file(VECTORS / "tampered" / name, vector_identities)
        for secret in ("s3cr3t!", "admin", "5432"):
            assert secret not in str(caught.value).replace(str(VECTORS), "")


def test_wrong_identity_names_the_recipients(tmp_path: Path) -> None:
    identities = load_identities(
        VECTORS / "age-test-identity-2.txt", environ={"HOME": "/nonexistent"}
    )
    with pytest.raises(NoMatchingIdentity) as caught:
        decrypt_file(VECTORS / "flat.sops.yaml", identities)
    assert str(caught.value) == (
        f"{VECTORS / 'flat.sops.yaml'}: no identity matches any recipient of the file "
        "(age1zr62m06yg4wffckhngvvyv6j96kca6dydckenympyrvtnw9ep9qsk6mjqa); "
        f"identities tried from --identity {VECTORS / 'age-test-identity-2.txt'}"
    )


def test_shamir_threshold_not_met(tmp_path: Path) -> None:
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    with pytest.raises(NoMatchingIdentity) as caught:
        decrypt_file(VECTORS / "shamir.sops.yaml", identities)
    assert str(caught.value) == (
        f"{VECTORS / 'shamir.sops.yaml'}: only 1 of the 2 key groups required by the "
        "Shamir threshold could be opened"
        f" (identities from --identity {VECTORS / 'age-test-identity.txt'})"
    )


def test_either_recipient_of_a_two_recipient_file_decrypts() -> None:
    for key_file in ("age-test-identity.txt", "age-test-identity-2.txt"):
        identities = load_identities(VECTORS / key_file, environ={"HOME": "/nonexistent"})
        assert (
            decrypt_file(VECTORS / "data.sops.json", identities).secrets()["service"].reveal()
            == "payments"
        )


def test_vectors_copied_unchanged_decrypt_from_any_directory(
    tmp_path: Path, vector_identities: Identities
) -> None:
    copy = tmp_path / "renamed.sops.yaml"
    shutil.copy(VECTORS / "nested.sops.yaml", copy)
    assert decrypt_file(copy, vector_identities).names()[0] == "app"


def test_secrets_gives_nested_values_as_canonical_json(vector_identities: Identities) -> None:
    secrets = decrypt_file(VECTORS / "nested.sops.yaml", vector_identities).secrets()
    assert secrets["app"].reveal() == (
        '{"debug":false,"limits":{"cpu":"500m","memory":"1Gi"},"name":"billing","ratio":0.75,"replicas":3}'
    )
    assert (
        secrets["servers"].reveal()
        == '["alpha",42,{"host":"db1","port":6379},["inner-a","inner-b"]]'
    )
    assert [
        secrets[name].reveal() for name in ("negative", "whole_float", "created", "greeting")
    ] == [
        "-17",
        "2.0",
        "2024-01-02T03:04:05Z",
        "héllo wörld ✓",
    ]
    assert repr(secrets["app"]) == "Secret([secret])"
    decrypted = decrypt_file(VECTORS / "nested.sops.yaml", vector_identities)
    assert "billing" not in repr(decrypted) and "billing" not in repr(decrypted.documents)
