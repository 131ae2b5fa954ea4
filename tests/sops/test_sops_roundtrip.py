"""Round trips with the real sops binary: it reads what we write, we read what it writes."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
from sops_helpers import VECTORS, AgeKey, identities_for, make_age_key, run_sops, write_config

from aivault_ops.sops import (
    EncryptionRule,
    KeyPlan,
    SopsConfig,
    decrypt_bytes,
    decrypt_file,
    encrypt_plaintext,
    load_identities,
    rotate,
    set_value,
    update_keys,
)
from aivault_ops.sops.stores import Format, parse_plaintext
from aivault_ops.sops.tree import to_python

YAML_PLAIN = """\
# top comment
username: admin
password: "s3cr3t: with colon # and hash"
port: 5432
ratio: 0.75
big: 1.0e+10
whole: 2.0
tiny: 1e-7
enabled: true
yes_is_text: yes
octal: 017
hex: 0x1F
created: 2024-01-02T03:04:05Z
day: 2024-01-02
nothing: null
empty: ""
unicode_ключ: "héllo wörld ✓"
multiline: |
  line one
  line two
nested:
  # inside nested
  deep:
    deeper: value
  list:
    # before first
    - one
    - 2
    - sub: s1
      # inside item
      other: 3.5
    - - n1
      - n2
public_unencrypted: visible
"""
JSON_PLAIN = (
    '{"service": "payments", "port": 8443, "pi": 3.14159, "tiny": 1e-7, "active": true,'
    ' "missing": null, "blank": "", "tags": ["a", 1, {"k": "v"}, [2.5]],'
    ' "db": {"primary": {"host": "10.0.0.1", "password": "pa:ss"}}, "ünïcode_kéy": "välue"}\n'
)
DOTENV_PLAIN = (
    '# env comment\nDB_USER=admin\nDB_PASS="quoted value"\nEMPTY=\n'
    "MULTI=line1\\nline2\nexport EXPORTED=yes\nPUBLIC_unencrypted=clear\n"
)
BINARY_PLAIN = bytes(range(256)) + "ünïcode\n".encode()
MULTIDOC_PLAIN = (
    "---\nname: first\nvalue: 1\n# between\n---\nname: second\nitems:\n  - x\n  - {a: 1}\n"
)
CASES: list[tuple[Format, str, bytes]] = [
    ("yaml", "data.sops.yaml", YAML_PLAIN.encode()),
    ("yaml", "multi.sops.yaml", MULTIDOC_PLAIN.encode()),
    ("binary", "empty.sops.bin", b""),
    ("json", "data.sops.json", JSON_PLAIN.encode()),
    ("dotenv", "data.sops.env", DOTENV_PLAIN.encode()),
    ("binary", "data.sops.bin", BINARY_PLAIN),
]


def values(format_: Format, data: bytes) -> object:
    """Typed plaintext values (yaml.v3 typing) for comparison."""
    return normalize([to_python(doc) for doc in parse_plaintext(data, format_, "<test>")])


def normalize(value: object) -> object:
    """Numbers compare by value (sops prints 2.0 as 2); bools stay distinct."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return (
            ("nan",) if isinstance(value, float) and math.isnan(value) else ("number", float(value))
        )
    return value


def ours_encrypt(
    format_: Format, data: bytes, *keys: AgeKey, rule: EncryptionRule | None = None
) -> bytes:
    plan = KeyPlan((tuple(key.recipient for key in keys),))
    return encrypt_plaintext(data, format_=format_, plan=plan, rule=rule or EncryptionRule())


@pytest.mark.parametrize(("format_", "name", "plain"), CASES, ids=[case[1] for case in CASES])
def test_sops_decrypts_what_we_write(
    format_: Format, name: str, plain: bytes, tmp_path: Path, age_key: AgeKey
) -> None:
    (tmp_path / name).write_bytes(ours_encrypt(format_, plain, age_key))
    result = run_sops(["-d", name], cwd=tmp_path, keys=[age_key])
    if format_ == "binary":
        assert result.stdout == plain
    else:
        assert values(format_, result.stdout) == values(format_, plain)


@pytest.mark.parametrize(("format_", "name", "plain"), CASES, ids=[case[1] for case in CASES])
def test_we_decrypt_what_sops_writes(
    format_: Format, name: str, plain: bytes, tmp_path: Path, age_key: AgeKey
) -> None:
    (tmp_path / f"plain-{name}").write_bytes(plain)
    args = ["--config", "/dev/null", "-e", "--age", age_key.recipient, "--filename-override", name]
    encrypted = run_sops([*args, f"plain-{name}"], cwd=tmp_path).stdout
    decrypted = decrypt_bytes(
        encrypted, format=format_, identities=identities_for(age_key), source_name=name
    )
    if format_ == "binary":
        assert decrypted.secrets()["data"].reveal() == plain
    else:
        assert values(format_, decrypted.reveal_plaintext()) == values(format_, plain)


def test_sops_decrypts_our_comments_and_rules(tmp_path: Path, age_key: AgeKey) -> None:
    rule = EncryptionRule("encrypted_regex", "^(password|deep)$", mac_only_encrypted=True)
    (tmp_path / "x.yaml").write_bytes(ours_encrypt("yaml", YAML_PLAIN.encode(), age_key, rule=rule))
    result = run_sops(["-d", "x.yaml"], cwd=tmp_path, keys=[age_key])
    assert values("yaml", result.stdout) == values("yaml", YAML_PLAIN.encode())
    assert b"# inside nested" in result.stdout and b"# top comment" in result.stdout


@pytest.mark.parametrize("kind", ["unencrypted_suffix", "encrypted_suffix", "unencrypted_regex"])
def test_each_rule_kind_round_trips(kind: str, tmp_path: Path, age_key: AgeKey) -> None:
    value = {
        "unencrypted_suffix": "_unencrypted",
        "encrypted_suffix": "word",
        "unencrypted_regex": "^port$",
    }
    rule = EncryptionRule(kind, value[kind])  # type: ignore[arg-type]
    (tmp_path / "x.yaml").write_bytes(ours_encrypt("yaml", YAML_PLAIN.encode(), age_key, rule=rule))
    result = run_sops(["-d", "x.yaml"], cwd=tmp_path, keys=[age_key])
    assert values("yaml", result.stdout) == values("yaml", YAML_PLAIN.encode())


def test_shamir_file_we_write_opens_with_any_two_of_three(tmp_path: Path) -> None:
    keys = [make_age_key(tmp_path / "keys", f"k{i}.txt") for i in range(3)]
    plan = KeyPlan(tuple((key.recipient,) for key in keys), 2)
    data = encrypt_plaintext(b"token: abc\n", format_="yaml", plan=plan, rule=EncryptionRule())
    (tmp_path / "s.yaml").write_bytes(data)
    for pair in ([keys[0], keys[1]], [keys[1], keys[2]], [keys[0], keys[2]]):
        assert run_sops(["-d", "s.yaml"], cwd=tmp_path, keys=pair).stdout == b"token: abc\n"
        assert (
            decrypt_file(tmp_path / "s.yaml", identities_for(*pair)).secrets()["token"].reveal()
            == "abc"
        )
    assert run_sops(["-d", "s.yaml"], cwd=tmp_path, keys=[keys[0]], check=False).returncode == 128


def test_shamir_file_sops_writes_opens_here(tmp_path: Path) -> None:
    keys = [make_age_key(tmp_path / "keys", f"k{i}.txt") for i in range(3)]
    groups = "".join(f"      - age: [{key.recipient}]\n" for key in keys)
    write_config(tmp_path, f"  - key_groups:\n{groups}    shamir_threshold: 2\n")
    (tmp_path / "s.yaml").write_text("token: abc\n")
    run_sops(["-e", "-i", "s.yaml"], cwd=tmp_path)
    assert (
        decrypt_file(tmp_path / "s.yaml", identities_for(keys[0], keys[2]))
        .secrets()["token"]
        .reveal()
        == "abc"
    )


def test_ssh_recipient_both_ways(tmp_path: Path) -> None:
    recipient = (VECTORS / "ssh-test-ed25519.pub").read_text().strip()
    plan = KeyPlan(((recipient,),))
    (tmp_path / "s.yaml").write_bytes(
        encrypt_plaintext(b"k: v\n", format_="yaml", plan=plan, rule=EncryptionRule())
    )
    ssh_env = {"SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(VECTORS / "ssh-test-ed25519")}
    assert run_sops(["-d", "s.yaml"], cwd=tmp_path, extra_env=ssh_env).stdout == b"k: v\n"
    identities = load_identities(environ={**ssh_env, "HOME": "/nonexistent"})
    assert decrypt_file(tmp_path / "s.yaml", identities).secrets()["k"].reveal() == "v"


def test_sops_updatekeys_on_our_file_and_ours_on_a_sops_file(
    tmp_path: Path, age_key: AgeKey, second_age_key: AgeKey
) -> None:
    write_config(tmp_path, f"  - path_regex: \\.yaml$\n    age: {age_key.recipient}\n")
    (tmp_path / "ours.yaml").write_bytes(ours_encrypt("yaml", YAML_PLAIN.encode(), age_key))
    (tmp_path / "theirs.yaml").write_text(YAML_PLAIN)
    run_sops(["-e", "-i", "theirs.yaml"], cwd=tmp_path)
    write_config(
        tmp_path,
        f"  - path_regex: \\.yaml$\n    age: {age_key.recipient},{second_age_key.recipient}\n",
    )
    run_sops(["updatekeys", "-y", "ours.yaml"], cwd=tmp_path, keys=[age_key])
    config = SopsConfig.find(tmp_path)
    update = update_keys(tmp_path / "theirs.yaml", config, identities_for(age_key))
    assert update.changed and update.added == (second_age_key.recipient,)
    for name in ("ours.yaml", "theirs.yaml"):
        only_second = identities_for(second_age_key)
        assert values(
            "yaml", decrypt_file(tmp_path / name, only_second).reveal_plaintext()
        ) == values("yaml", YAML_PLAIN.encode())
        result = run_sops(["-d", name], cwd=tmp_path, keys=[second_age_key])
        assert values("yaml", result.stdout) == values("yaml", YAML_PLAIN.encode())


def test_updatekeys_keeps_values_and_mac(
    tmp_path: Path, age_key: AgeKey, second_age_key: AgeKey
) -> None:
    write_config(tmp_path, f"  - age: {age_key.recipient},{second_age_key.recipient}\n")
    path = tmp_path / "x.yaml"
    path.write_bytes(ours_encrypt("yaml", b"a: 1\nb: two\n", age_key))
    before = decrypt_file(path, identities_for(age_key))
    update_keys(path, SopsConfig.find(tmp_path), identities_for(age_key))
    after = decrypt_file(path, identities_for(second_age_key))
    assert after.data_key == before.data_key
    assert (after.block.mac, after.block.lastmodified) == (
        before.block.mac,
        before.block.lastmodified,
    )
    assert after.stash == before.stash


def test_rotate_sops_file_then_sops_reads_it(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / "p.json").write_text(JSON_PLAIN)
    args = [
        "--config",
        "/dev/null",
        "-e",
        "--age",
        age_key.recipient,
        "--filename-override",
        "x.json",
        "p.json",
    ]
    (tmp_path / "x.json").write_bytes(run_sops(args, cwd=tmp_path).stdout)
    before = decrypt_file(tmp_path / "x.json", identities_for(age_key))
    rotate(tmp_path / "x.json", identities_for(age_key))
    after = decrypt_file(tmp_path / "x.json", identities_for(age_key))
    assert after.data_key != before.data_key and not set(after.stash.values()) & set(
        before.stash.values()
    )
    result = run_sops(["-d", "x.json"], cwd=tmp_path, keys=[age_key])
    assert values("json", result.stdout) == values("json", JSON_PLAIN.encode())


def test_set_on_a_sops_file_keeps_unchanged_ciphertexts(tmp_path: Path, age_key: AgeKey) -> None:
    write_config(tmp_path, f"  - age: {age_key.recipient}\n")
    (tmp_path / "s.yaml").write_text("a: one\nb: two\n# note\nc: [1, 2]\n")
    run_sops(["-e", "-i", "s.yaml"], cwd=tmp_path)
    before = (tmp_path / "s.yaml").read_text()
    status = set_value(
        tmp_path / "s.yaml", "b", "changed", SopsConfig.find(tmp_path), identities_for(age_key)
    )
    after = (tmp_path / "s.yaml").read_text()
    assert status == "updated"
    kept = [
        line
        for line in before.splitlines()
        if line.startswith(("a:", "#ENC", "    - ENC", "        - "))
    ]
    assert kept and all(line in after.splitlines() for line in kept)
    assert next(line for line in before.splitlines() if line.startswith("b:")) not in after
    result = run_sops(["-d", "s.yaml"], cwd=tmp_path, keys=[age_key])
    assert values("yaml", result.stdout) == values("yaml", b"a: one\nb: changed\nc: [1, 2]\n")


def test_sops_set_on_our_file_then_we_read_it(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / "x.yaml").write_bytes(ours_encrypt("yaml", YAML_PLAIN.encode(), age_key))
    run_sops(
        ["set", "x.yaml", '["nested"]["deep"]["deeper"]', '"new"'], cwd=tmp_path, keys=[age_key]
    )
    decrypted = decrypt_file(tmp_path / "x.yaml", identities_for(age_key))
    nested = decrypted.documents[0].get("nested")
    assert nested is not None and to_python(nested.value) == {
        **to_python(parse_plaintext(YAML_PLAIN.encode(), "yaml", "x")[0].get("nested").value),  # type: ignore[union-attr, dict-item]
        "deep": {"deeper": "new"},
    }


def test_real_age_cli_opens_our_wrapped_data_key(tmp_path: Path, age_key: AgeKey) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(ours_encrypt("yaml", b"a: b\n", age_key))
    decrypted = decrypt_file(path, identities_for(age_key))
    enc = decrypted.block.groups[0][0].enc.encode()
    opened = subprocess.run(
        ["age", "-d", "-i", str(age_key.identity_file)], input=enc, capture_output=True, check=True
    )
    assert opened.stdout == decrypted.data_key
