"""`run_init` called in-process: what it writes, prints and refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pyrage import x25519

from aivault_ops.commands.init import run_init
from aivault_ops.commands.validate import run_validate
from aivault_ops.errors import UsageError
from aivault_ops.user_config import config_path, identity_files

RECIPIENT = str(x25519.Identity.generate().to_public())


def test_an_existing_recipient_makes_a_repo_without_any_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_init(directory=Path("vault.d"), recipient=RECIPIENT, name="team-a") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:2] == ["Created policy repo vault.d", f"Runtime age recipient: {RECIPIENT}"]
    assert not any(line.startswith("Signing public key") for line in lines)
    token = lines[2].rsplit(": ", 1)[1]
    assert token.startswith("avt_")
    assert lines[3:] == [
        "Next: set the real secret (the identity of that recipient must be in SOPS_AGE_KEY_FILE),"
        " then validate:",
        "  (cd vault.d && aivault-ops secrets set EXAMPLE_API_KEY)",
        "  aivault-ops validate vault.d",
    ]
    project = Path("vault.d/aivault-ops.yaml").read_text()
    assert "name: team-a" in project and "trustedSigningKeys" not in project
    consumer = Path("vault.d/consumers/agent.yaml").read_text()
    assert hashlib.sha256(token.encode()).hexdigest() in consumer
    assert list(tmp_path.glob("*")) == [tmp_path / "vault.d"]
    assert run_validate(paths=[], environment=None) == 0


def test_a_new_identity_is_recorded_for_the_secrets_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = tmp_path / "keys" / "id.txt"
    identity.parent.mkdir()
    assert run_init(directory=tmp_path / "repo", identity_out=identity) == 0
    out = capsys.readouterr().out
    assert identity_files(config_path()) == [identity.absolute()]
    assert "Identity file recorded in " in out
    assert "Next: set the real secret (value from stdin, never echoed), then validate:" in out


def test_the_default_name_comes_from_the_parent_directory(tmp_path: Path) -> None:
    parent = tmp_path / "Acme Corp!!"
    assert run_init(directory=parent / "vault.d", recipient=RECIPIENT) == 0
    assert "name: acme-corp\n" in (parent / "vault.d/aivault-ops.yaml").read_text()
    odd = tmp_path / "!!!"
    assert run_init(directory=odd / "vault.d", recipient=RECIPIENT) == 0
    assert "name: policy\n" in (odd / "vault.d/aivault-ops.yaml").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "pass exactly one of --identity-out and --recipient"),
        ({"recipient": RECIPIENT, "identity_out": "id.txt"}, "pass exactly one of"),
        ({"recipient": "age1nope"}, "--recipient: not an age X25519 recipient: age1nope"),
        ({"identity_out": "repo/id.txt"}, "keys must be written outside the policy repo"),
        ({"recipient": RECIPIENT, "signing_key_out": "repo/sk.pem"}, "outside the policy repo"),
    ],
    ids=["neither", "both", "bad-recipient", "identity-inside", "signing-key-inside"],
)
def test_refusals(tmp_path: Path, options: dict[str, str], message: str) -> None:
    paths = {
        key: (tmp_path / value if key != "recipient" else value) for key, value in options.items()
    }
    with pytest.raises(UsageError, match=message):
        run_init(directory=tmp_path / "repo", **paths)  # type: ignore[arg-type]
    assert not (tmp_path / "repo").exists()


def test_a_non_empty_directory_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="directory is not empty"):
        run_init(directory=tmp_path / "repo", recipient=RECIPIENT)
    assert [p.name for p in (tmp_path / "repo").iterdir()] == ["mine.txt"]
