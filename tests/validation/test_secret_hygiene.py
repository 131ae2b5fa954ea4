"""Secret-file hygiene without any private key: plaintext slipped into real SOPS files."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from test_corpus import build_project, run_validate

KEYS = Path(__file__).resolve().parent.parent / "keys"
ENCRYPTED_VALUE = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")
PLAINTEXT_HINT = (
    "remove it and set it again with `aivault-ops secrets set` (the plaintext may be in git"
    " history: rotate it)"
)


def _replace_first_value(path: Path, plaintext: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("INTERNAL_API_KEY: ENC[")
    path.write_text(ENCRYPTED_VALUE.sub(plaintext, text, count=1), encoding="utf-8")


def test_plaintext_value_inserted_into_sops_file_is_caught(tmp_path: Path) -> None:
    """Issue 2: a value pasted in plaintext over an encrypted one fails validation."""
    project = build_project(None, tmp_path)
    _replace_first_value(project / "secrets/internal.sops.yaml", "hunter2-leaked")
    result = run_validate(tmp_path, "proj")
    assert result.stdout.splitlines() == [
        "proj/secrets/internal.sops.yaml:1:19: E-SOPS-PLAINTEXT: value of 'INTERNAL_API_KEY'"
        f" is not encrypted; {PLAINTEXT_HINT}"
    ]
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr


def test_plaintext_value_is_reported_in_json_without_the_value(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    _replace_first_value(project / "secrets/internal.sops.yaml", "hunter2-leaked")
    result = run_validate(tmp_path, "proj", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == [
        {
            "path": "proj/secrets/internal.sops.yaml",
            "line": 1,
            "column": 19,
            "code": "E-SOPS-PLAINTEXT",
            "message": f"value of 'INTERNAL_API_KEY' is not encrypted; {PLAINTEXT_HINT}",
        }
    ]
    assert "hunter2" not in result.stdout


def test_nested_plaintext_value_names_its_key_path(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    secret = project / "secrets/internal.sops.yaml"
    lines = secret.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1:1] = ["database:\n", "    users:\n", "        - password: swordfish\n"]
    secret.write_text("".join(lines), encoding="utf-8")
    result = run_validate(tmp_path, "proj")
    assert result.stdout.splitlines() == [
        "proj/secrets/internal.sops.yaml:4:21: E-SOPS-PLAINTEXT: value of"
        f" 'database.users.password' is not encrypted; {PLAINTEXT_HINT}"
    ]
    assert "swordfish" not in result.stdout + result.stderr


@pytest.mark.parametrize("value", ["", "null", "~"])
def test_empty_values_need_no_encryption(tmp_path: Path, value: str) -> None:
    """sops leaves empty strings and nulls as they are; they are not plaintext leaks."""
    project = build_project(None, tmp_path)
    secret = project / "secrets/internal.sops.yaml"
    lines = secret.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1, f"EMPTY: {value}\n" if value else 'EMPTY: ""\n')
    secret.write_text("".join(lines), encoding="utf-8")
    result = run_validate(tmp_path, "proj")
    assert (result.returncode, result.stdout) == (0, "ok: proj valid\n")


def test_unencrypted_suffix_keys_may_be_plaintext(tmp_path: Path) -> None:
    """The file's own rule (`unencrypted_suffix: _unencrypted`) allows plaintext there."""
    project = build_project(None, tmp_path)
    secret = project / "secrets/internal.sops.yaml"
    lines = secret.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1, "owner_unencrypted: platform-team\n")
    secret.write_text("".join(lines), encoding="utf-8")
    result = run_validate(tmp_path, "proj")
    assert (result.returncode, result.stdout) == (0, "ok: proj valid\n")


def test_the_real_sops_refuses_the_tampered_file_too(tmp_path: Path) -> None:
    """The fixture is realistic: sops itself refuses to decrypt the doctored file."""
    project = build_project(None, tmp_path)
    secret = project / "secrets/internal.sops.yaml"
    env = {
        **os.environ,
        "SOPS_DISABLE_VERSION_CHECK": "1",
        "SOPS_AGE_KEY_FILE": str(KEYS / "test-age-identity.txt"),
    }
    good = subprocess.run(
        ["sops", "-d", str(secret)], env=env, capture_output=True, text=True, check=False
    )
    assert (good.returncode, good.stdout) == (0, "INTERNAL_API_KEY: test-internal-key-not-real\n")
    _replace_first_value(secret, "hunter2-leaked")
    bad = subprocess.run(
        ["sops", "-d", str(secret)], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0
    assert "does not match sops' data format" in bad.stderr


def test_a_secret_file_linking_outside_the_project_is_refused(tmp_path: Path) -> None:
    project = build_project(None, tmp_path)
    secret = project / "secrets/internal.sops.yaml"
    secret.rename(tmp_path / "outside.sops.yaml")
    secret.symlink_to("../../outside.sops.yaml")
    result = run_validate(tmp_path, "proj")
    assert result.returncode == 1
    assert (
        "proj/secrets/internal.sops.yaml:1:1: E-SECRET-OUTSIDE: secret file is a link to a file"
        " outside the project; bundles carry only files committed inside it"
    ) in result.stdout.splitlines()
