"""Edits behave like sops: small diffs on set, same key on updatekeys, new key on rotate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sops_helpers import VECTORS, AgeKey, identities_for, write_config

from aivault_ops.sops import (
    ConfigError,
    SopsConfig,
    SopsError,
    UnsupportedFormat,
    decrypt_file,
    load_identities,
    read_metadata,
    rotate,
    set_value,
    update_keys,
)
from aivault_ops.sops.block import parse_block
from aivault_ops.sops.stores import parse, serialize


def _config(directory: Path, *keys: AgeKey, extra: str = "") -> SopsConfig:
    recipients = ",".join(key.recipient for key in keys)
    write_config(
        directory, f"  - path_regex: \\.sops\\.(yaml|json|env)$\n    age: {recipients}\n{extra}"
    )
    config = SopsConfig.find(directory)
    assert config is not None
    return config


def _enc_lines(path: Path) -> set[str]:
    return {
        line.strip()
        for line in path.read_text().splitlines()
        if "ENC[" in line and "mac:" not in line
    }


@pytest.mark.parametrize("suffix", ["yaml", "json", "env"])
def test_set_creates_a_file_per_the_creation_rule(
    tmp_path: Path, age_key: AgeKey, suffix: str
) -> None:
    config = _config(tmp_path, age_key, extra="    encrypted_suffix: _KEY\n")
    path = tmp_path / "secrets" / f"new.sops.{suffix}"
    assert set_value(path, "API_KEY", "v1", config, None) == "created"
    meta = read_metadata(path)
    assert meta.recipients == (age_key.recipient,) and (meta.rules.kind, meta.rules.value) == (
        "encrypted_suffix",
        "_KEY",
    )
    assert decrypt_file(path, identities_for(age_key)).secrets()["API_KEY"].reveal() == "v1"


def test_set_the_same_value_leaves_the_file_untouched(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key)
    path = tmp_path / "a.sops.yaml"
    set_value(path, "A", "one", config, None)
    before = path.read_bytes()
    assert set_value(path, "A", "one", config, identities_for(age_key)) == "unchanged"
    assert path.read_bytes() == before


def test_set_changes_only_the_changed_value(tmp_path: Path) -> None:
    path = tmp_path / "n.sops.yaml"
    shutil.copy(VECTORS / "nested.sops.yaml", path)
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    before = path.read_text().splitlines()
    assert set_value(path, "greeting", "bonjour", None, identities) == "updated"
    after = path.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [old.split(":")[0].strip() for old, _new in changed] == [
        "greeting",
        "lastmodified",
        "mac",
    ]
    assert decrypt_file(path, identities).secrets()["greeting"].reveal() == "bonjour"


@pytest.mark.parametrize(
    "name",
    [
        "nested.sops.yaml",
        "comments-in-list.sops.yaml",
        "multidoc.sops.yaml",
        "flat.sops.yaml",
        "ssh.sops.yaml",
    ],
)
def test_sops_written_yaml_is_rewritten_byte_for_byte(name: str) -> None:
    path = VECTORS / name
    raw = parse(path.read_bytes(), "yaml", name)
    block = parse_block(raw.metadata, name)
    assert serialize("yaml", raw.documents, block.to_data()) == path.read_bytes()


def test_set_adds_new_names_at_the_end_and_updates_later_documents(tmp_path: Path) -> None:
    path = tmp_path / "m.sops.yaml"
    shutil.copy(VECTORS / "multidoc.sops.yaml", path)
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    set_value(path, "items", "replaced", None, identities)
    set_value(path, "added", "new", None, identities)
    decrypted = decrypt_file(path, identities)
    assert [doc.keys() for doc in decrypted.documents] == [
        ["name", "value", "added"],
        ["name", "items"],
    ]
    assert decrypted.secrets()["items"].reveal() == "replaced"


def test_set_refuses_binary_files_and_bad_dotenv_names(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key)
    with pytest.raises(UnsupportedFormat) as caught:
        set_value(tmp_path / "blob.bin", "data", "x", config, None)
    assert (
        str(caught.value)
        == "binary SOPS files hold one unnamed value; use a .yaml, .json or .env file"
    )
    for name in ("A=B", "sops_x", " LEADING"):
        with pytest.raises(SopsError, match="invalid dotenv secret name"):
            set_value(tmp_path / "x.sops.env", name, "x", config, None)
    with pytest.raises(SopsError, match="invalid secret name 'sops'"):
        set_value(tmp_path / "x.sops.yaml", "sops", "x", config, None)


def test_set_without_a_matching_rule(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key)
    with pytest.raises(ConfigError) as caught:
        set_value(tmp_path / "other.yaml", "A", "x", config, None)
    assert str(caught.value) == f"{config.path}: no creation rule matches other.yaml"
    with pytest.raises(ConfigError, match=r"no \.sops\.yaml found"):
        set_value(tmp_path / "other.yaml", "A", "x", None, None)


def test_updatekeys_without_changes_leaves_the_file_untouched(
    tmp_path: Path, age_key: AgeKey
) -> None:
    config = _config(tmp_path, age_key)
    path = tmp_path / "a.sops.json"
    set_value(path, "A", "one", config, None)
    before = path.read_bytes()
    update = update_keys(path, config, identities_for(age_key))
    assert not update.changed and path.read_bytes() == before


def test_updatekeys_removing_a_recipient_locks_it_out(
    tmp_path: Path, age_key: AgeKey, second_age_key: AgeKey
) -> None:
    path = tmp_path / "a.sops.env"
    set_value(path, "A", "one", _config(tmp_path, age_key, second_age_key), None)
    update = update_keys(path, _config(tmp_path, second_age_key), identities_for(age_key))
    assert update.removed == (age_key.recipient,) and update.added == ()
    with pytest.raises(SopsError, match="no identity matches any recipient"):
        decrypt_file(path, identities_for(age_key))
    assert decrypt_file(path, identities_for(second_age_key)).secrets()["A"].reveal() == "one"


def test_updatekeys_to_key_groups(tmp_path: Path, age_key: AgeKey, second_age_key: AgeKey) -> None:
    path = tmp_path / "a.sops.yaml"
    set_value(path, "A", "one", _config(tmp_path, age_key), None)
    groups = (
        f"  - key_groups:\n      - age: [{age_key.recipient}]\n"
        f"      - age: [{second_age_key.recipient}]\n"
    )
    write_config(tmp_path, groups)
    update_keys(path, SopsConfig.find(tmp_path), identities_for(age_key))
    assert read_metadata(path).key_groups == ((age_key.recipient,), (second_age_key.recipient,))
    with pytest.raises(SopsError, match="only 1 of the 2 key groups"):
        decrypt_file(path, identities_for(age_key))
    assert (
        decrypt_file(path, identities_for(age_key, second_age_key)).secrets()["A"].reveal() == "one"
    )


def test_rotate_changes_every_ciphertext_but_no_value(tmp_path: Path) -> None:
    path = tmp_path / "n.sops.yaml"
    shutil.copy(VECTORS / "nested.sops.yaml", path)
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    before = decrypt_file(path, identities)
    old_lines = _enc_lines(path)
    rotate(path, identities)
    after = decrypt_file(path, identities)
    assert after.secrets() == before.secrets() and after.data_key != before.data_key
    assert not old_lines & _enc_lines(path)


def test_files_with_other_key_types_are_read_but_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "f.sops.yaml"
    text = (
        (VECTORS / "flat.sops.yaml")
        .read_text()
        .replace("sops:\n", "sops:\n    pgp:\n        - fp: ABCDEF\n", 1)
    )
    path.write_text(text)
    identities = load_identities(
        VECTORS / "age-test-identity.txt", environ={"HOME": "/nonexistent"}
    )
    assert decrypt_file(path, identities).secrets()["username"].reveal() == "admin"
    with pytest.raises(UnsupportedFormat) as caught:
        rotate(path, identities)
    assert str(caught.value) == (
        f"{path}: also uses pgp keys; aivault-ops only writes age keys (edit this file with sops)"
    )


def test_existing_file_mode_is_kept(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key)
    path = tmp_path / "a.sops.yaml"
    set_value(path, "A", "one", config, None)
    path.chmod(0o640)
    set_value(path, "A", "two", config, identities_for(age_key))
    assert path.stat().st_mode & 0o777 == 0o640


def test_updating_needs_an_identity(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key)
    path = tmp_path / "a.sops.yaml"
    set_value(path, "A", "one", config, None)
    with pytest.raises(SopsError) as caught:
        set_value(path, "A", "two", config, None)
    assert str(caught.value) == f"{path}: an identity is needed to update an existing file"


def test_unwritable_target_is_a_clear_error(tmp_path: Path, age_key: AgeKey) -> None:
    config = _config(tmp_path, age_key, extra="")
    (tmp_path / "secrets").write_text("a file where a directory should be\n")
    target = tmp_path / "secrets" / "a.sops.yaml"
    with pytest.raises(SopsError) as caught:
        set_value(target, "A", "x", config, None)
    assert str(caught.value) == f"{target}: cannot write: File exists"
