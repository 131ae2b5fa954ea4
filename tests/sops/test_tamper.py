"""Hand-made damage to a sops-written file: each gives one clear line, never a value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sops_helpers import VECTORS

from aivault_ops.sops import (
    EncryptionRule,
    Identities,
    KeyPlan,
    MacMismatch,
    MalformedSopsFile,
    SopsError,
    ValueTampered,
    decrypt_file,
    encrypt_plaintext,
)
from aivault_ops.sops.mac import encrypt_mac

FLAT = (VECTORS / "flat.sops.yaml").read_text()


def _damaged(tmp_path: Path, old: str, new: str, *, regex: bool = False) -> Path:
    text = re.sub(old, new, FLAT, count=1) if regex else FLAT.replace(old, new, 1)
    assert text != FLAT
    path = tmp_path / "flat.sops.yaml"
    path.write_text(text)
    return path


CASES = [
    (r"    mac: .*\n", "", MacMismatch, "MAC mismatch: the file has no MAC"),
    (
        r'lastmodified: "2026-11-27T11:22:35Z"',
        'lastmodified: "2026-11-27 11:22:35"',
        MalformedSopsFile,
        "sops metadata lastmodified is not an RFC 3339 time",
    ),
    (r"    version: 3\.11\.0\n", "", MalformedSopsFile, "sops metadata has no version"),
    (r"password: ENC\[AES256_GCM,data:", "password: ENC[AES256_GCM,data:!!", ValueTampered, None),
    (r"(password: ENC\[[^\]]*)type:str\]", r"\1type:bytes]", ValueTampered, None),
    (r"(password: ENC\[[^\]]*)tag:[^,]*,", r"\1tag:AAAA,", ValueTampered, None),
]


@pytest.mark.parametrize(("old", "new", "error", "message"), CASES)
def test_damage_is_reported_in_one_line(
    tmp_path: Path,
    vector_identities: Identities,
    old: str,
    new: str,
    error: type[SopsError],
    message: str | None,
) -> None:
    path = _damaged(tmp_path, old, new, regex=True)
    with pytest.raises(error) as caught:
        decrypt_file(path, vector_identities)
    text = str(caught.value)
    if message is None:
        assert text.startswith(f"{path}: password: ")
    else:
        assert text == f"{path}: {message}"
    assert "\n" not in text and "s3cr3t" not in text


def test_a_lower_case_mac_is_a_mismatch_as_in_sops(
    tmp_path: Path, vector_identities: Identities
) -> None:
    decrypted = decrypt_file(VECTORS / "flat.sops.yaml", vector_identities)
    real = json.loads((VECTORS / "expected.json").read_text())["flat.sops.yaml"]["mac_hex"]
    stored = encrypt_mac(decrypted.data_key, real.lower(), decrypted.block.lastmodified)
    path = _damaged(tmp_path, decrypted.block.mac, stored)
    with pytest.raises(MacMismatch) as caught:
        decrypt_file(path, vector_identities)
    assert str(caught.value) == (
        f"{path}: MAC mismatch: the file was modified outside sops "
        f"(file has {real.lower()[:12]}…, computed {real[:12]}…)"
    )


def test_invalid_recipient_is_refused_without_writing(tmp_path: Path) -> None:
    with pytest.raises(SopsError) as caught:
        encrypt_plaintext(
            b"a: b\n", format_="yaml", plan=KeyPlan((("age1notakey",),)), rule=EncryptionRule()
        )
    assert str(caught.value) == "invalid age recipient 'age1notakey'"
