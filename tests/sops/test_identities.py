"""Identities come from every place sops looks, in sops' order, and errors say where."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sops_helpers import RECIPIENT_1, VECTORS, AgeKey

from aivault_ops.sops import NoIdentity, decrypt_file, load_identities

KEY_1 = VECTORS / "age-test-identity.txt"
KEY_2 = VECTORS / "age-test-identity-2.txt"
SSH_KEY = VECTORS / "ssh-test-ed25519"


def test_all_sources_are_collected_in_sops_order(tmp_path: Path) -> None:
    default = tmp_path / "xdg" / "sops" / "age" / "keys.txt"
    default.parent.mkdir(parents=True)
    shutil.copy(KEY_1, default)
    environ = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(SSH_KEY),
        "SOPS_AGE_KEY": KEY_2.read_text(),
        "SOPS_AGE_KEY_FILE": str(KEY_1),
        "SOPS_AGE_KEY_CMD": f"cat {KEY_2}",
    }
    identities = load_identities(KEY_1, environ=environ)
    assert identities.sources == (
        f"--identity {KEY_1}",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        str(default),
    )
    assert len(identities.keys) == 6
    assert "AGE-SECRET-KEY" not in repr(identities)


def test_a_wrong_key_in_one_source_does_not_hide_a_right_one(tmp_path: Path) -> None:
    environ = {
        "HOME": str(tmp_path),
        "SOPS_AGE_KEY": KEY_2.read_text(),
        "SOPS_AGE_KEY_FILE": str(KEY_1),
    }
    decrypted = decrypt_file(VECTORS / "flat.sops.yaml", load_identities(environ=environ))
    assert decrypted.names()[0] == "username"


def test_default_ssh_keys_in_home_are_used(tmp_path: Path) -> None:
    (tmp_path / ".ssh").mkdir()
    shutil.copy(SSH_KEY, tmp_path / ".ssh" / "id_ed25519")
    identities = load_identities(environ={"HOME": str(tmp_path)})
    assert identities.sources == (str(tmp_path / ".ssh" / "id_ed25519"),)
    note = decrypt_file(VECTORS / "ssh.sops.yaml", identities).secrets()["note"]
    assert note.reveal() == "encrypted to an ssh-ed25519 recipient"


def test_default_key_file_without_xdg_is_under_dot_config(tmp_path: Path) -> None:
    default = tmp_path / ".config" / "sops" / "age" / "keys.txt"
    default.parent.mkdir(parents=True)
    default.write_text("# created: now\r\n" + KEY_1.read_text().replace("\n", "\r\n"))
    assert load_identities(environ={"HOME": str(tmp_path)}).sources == (str(default),)


def test_identity_flag_accepts_an_openssh_key() -> None:
    identities = load_identities(SSH_KEY, environ={"HOME": "/nonexistent"})
    assert identities.sources == (f"--identity {SSH_KEY}",)


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "SOPS_AGE_KEY_FILE": str(tmp_path / "missing.txt")}
    with pytest.raises(NoIdentity) as caught:
        load_identities(environ=environ)
    assert caught.value.diagnostics() == (
        "no age identity found (looked in SOPS_AGE_SSH_PRIVATE_KEY_FILE, "
        f"{tmp_path}/.ssh/id_ed25519, {tmp_path}/.ssh/id_rsa, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, "
        f"SOPS_AGE_KEY_CMD, {tmp_path}/.config/sops/age/keys.txt, "
        f"{tmp_path}/.config/aivault-ops/config.json)\n"
        f"  hint: SOPS_AGE_KEY_FILE ({tmp_path}/missing.txt does not exist); "
        "pass --identity FILE or set SOPS_AGE_KEY_FILE"
    )


def test_missing_identity_flag_file_is_an_error_even_with_other_keys(tmp_path: Path) -> None:
    with pytest.raises(NoIdentity) as caught:
        load_identities(tmp_path / "nope.txt", environ={"SOPS_AGE_KEY": KEY_1.read_text()})
    assert str(caught.value) == f"identity file {tmp_path / 'nope.txt'} does not exist"


def test_a_bad_identity_line_is_reported_without_its_content(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\nAGE-SECRET-KEY-1NOTAKEY\n")
    with pytest.raises(NoIdentity) as caught:
        load_identities(bad, environ={"HOME": str(tmp_path)})
    assert str(caught.value) == f"{bad}: line 2 is not an age identity"


def test_lower_case_secret_keys_are_refused_like_sops(tmp_path: Path) -> None:
    with pytest.raises(NoIdentity, match="SOPS_AGE_KEY: line 4 is not an age identity"):
        load_identities(environ={"HOME": str(tmp_path), "SOPS_AGE_KEY": KEY_1.read_text().lower()})


def test_key_command_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(NoIdentity, match="SOPS_AGE_KEY_CMD failed with exit status 1"):
        load_identities(environ={"HOME": str(tmp_path), "SOPS_AGE_KEY_CMD": "false"})


def test_generated_key_works(age_key: AgeKey) -> None:
    identities = load_identities(age_key.identity_file, environ={"HOME": "/nonexistent"})
    assert len(identities.keys) == 1 and age_key.recipient != RECIPIENT_1


def _record(tmp_path: Path, *files: Path) -> Path:
    config = tmp_path / ".config" / "aivault-ops" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"identityFiles": [str(path) for path in files]}))
    return config


def test_identity_files_recorded_by_init_are_searched_last(tmp_path: Path) -> None:
    config = _record(tmp_path, KEY_1)
    identities = load_identities(environ={"HOME": str(tmp_path), "SOPS_AGE_KEY": KEY_2.read_text()})
    assert identities.sources == ("SOPS_AGE_KEY", f"{KEY_1} (recorded in {config})")
    assert identities.searched[-1] == f"{KEY_1} (recorded in {config})"


def test_a_recorded_identity_file_that_is_gone_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    config = _record(tmp_path, gone)
    with pytest.raises(NoIdentity) as caught:
        load_identities(environ={"HOME": str(tmp_path)})
    assert caught.value.hint == (
        f"{gone} does not exist (recorded in {config}); "
        "pass --identity FILE or set SOPS_AGE_KEY_FILE"
    )


def test_a_broken_user_config_is_reported_only_when_nothing_is_found(tmp_path: Path) -> None:
    config = _record(tmp_path)
    config.write_text("{not json")
    environ = {"HOME": str(tmp_path), "SOPS_AGE_KEY_FILE": str(KEY_1)}
    assert load_identities(environ=environ).sources == ("SOPS_AGE_KEY_FILE",)
    with pytest.raises(NoIdentity) as caught:
        load_identities(environ={"HOME": str(tmp_path)})
    assert caught.value.hint == (
        f"{config}: not valid JSON (Expecting property name enclosed in double quotes, line 1); "
        "pass --identity FILE or set SOPS_AGE_KEY_FILE"
    )
