"""`run_verify` called in-process on bundles built by `run_compile`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import InitProject
from repo_support import repo

from aivault_ops.bundle import PublicKey
from aivault_ops.commands.compile import run_compile
from aivault_ops.commands.verify import run_verify
from aivault_ops.errors import AivaultError

__all__ = ["repo"]


@pytest.fixture
def bundle(repo: InitProject) -> Path:
    out = repo.workdir / "bundle-4.tar.gz"
    code = run_compile(
        repo=repo.root, out=out, signing_key=repo.signing_key, environment=None, serial=4,
        revision="r4",
    )  # fmt: skip
    assert code == 0
    return out


def test_a_good_bundle_is_summarised(
    repo: InitProject, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_verify(bundle=bundle, trust=[repo.public_key]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{bundle}: OK",
        "  serial:      4",
        "  revision:    r4",
        "  environment: -",
        f"  keyid:       {PublicKey.parse(repo.public_key).keyid}",
        "  expiresAt:   never",
        "  files:       2",
    ]
    assert run_verify(bundle=bundle, trust=[repo.public_key], as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["serial"], document["fileCount"]) == (True, 4, 2)


def test_a_key_file_can_be_trusted(
    repo: InitProject, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = repo.workdir / "trusted.pub"
    key_file.write_text(repo.public_key + "\n")
    assert run_verify(bundle=bundle, trust=[str(key_file)]) == 0


def test_a_tampered_bundle_fails_and_json_says_why_first(
    repo: InitProject, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    capsys.readouterr()
    with pytest.raises(AivaultError) as caught:
        run_verify(bundle=bundle, trust=[repo.public_key], as_json=True)
    document = json.loads(capsys.readouterr().out)
    assert (document["bundle"], document["ok"]) == (str(bundle), False)
    assert caught.value.message.startswith(f"{bundle}: {document['error']}: ")
    with pytest.raises(AivaultError):
        run_verify(bundle=bundle, trust=[repo.public_key])
    assert capsys.readouterr().out == ""
