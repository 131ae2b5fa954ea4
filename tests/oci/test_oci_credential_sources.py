"""The less common credential sources and every way they can be broken.

Each broken source is a clear error naming the source (never a password), or
"no login" where docker itself would fall through.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from aivault_ops.errors import AivaultError
from aivault_ops.oci.credentials import Login, find_login

SECRET = "pw-never-echoed-42"


def _config(tmp_path: Path, config: object) -> dict[str, str]:
    directory = tmp_path / "docker"
    directory.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (directory / "config.json").write_text(text)
    return {"DOCKER_CONFIG": str(directory), "PATH": os.environ.get("PATH", "")}


def _helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str
) -> dict[str, str]:
    """A docker-credential-<name> program on this process's PATH running `script` (sh)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return {}


def test_an_unreadable_password_file_names_the_variable(tmp_path: Path) -> None:
    environ = {
        "AIVAULT_OPS_REGISTRY_USERNAME": "ci",
        "AIVAULT_OPS_REGISTRY_PASSWORD_FILE": str(tmp_path / "missing"),
    }
    with pytest.raises(AivaultError, match="AIVAULT_OPS_REGISTRY_PASSWORD_FILE="):
        find_login("r.example", environ)


def test_a_config_that_is_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AivaultError, match="not a readable docker config"):
        find_login("r.example", _config(tmp_path, "{not json"))


def test_identity_tokens_and_plain_fields_are_logins(tmp_path: Path) -> None:
    config = {
        "auths": {
            "a.example": {"identitytoken": SECRET},
            "b.example": {"username": "robot", "password": SECRET},
            "c.example": {"auth": base64.b64encode(b"no-colon").decode()},
            "d.example": {},
        }
    }
    environ = _config(tmp_path, config)
    assert find_login("a.example", environ) == Login(
        "<token>", SECRET, f"{tmp_path}/docker/config.json (auths)"
    )
    assert find_login("b.example", environ).password == SECRET  # type: ignore[union-attr]
    assert find_login("c.example", environ) is None
    assert find_login("d.example", environ) is None


def test_an_auth_value_that_is_not_base64_is_an_error_without_the_value(tmp_path: Path) -> None:
    environ = _config(tmp_path, {"auths": {"r.example": {"auth": "%%%" + SECRET}}})
    with pytest.raises(AivaultError, match="not base64") as caught:
        find_login("r.example", environ)
    assert SECRET not in str(caught.value)


def test_a_credential_store_helper_that_knows_nothing_is_no_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = _config(tmp_path, {"credsStore": "empty"})
    environ |= _helper(tmp_path, monkeypatch, "empty", "exit 1")
    assert find_login("r.example", environ) is None


def test_a_helper_that_answers_garbage_or_cannot_run_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = _config(tmp_path, {"credHelpers": {"r.example": "broken"}})
    environ |= _helper(tmp_path, monkeypatch, "broken", "echo not-json")
    with pytest.raises(AivaultError, match="docker-credential-broken answered"):
        find_login("r.example", environ)
    environ = _config(tmp_path, {"credHelpers": {"r.example": "absent"}})
    with pytest.raises(AivaultError, match="docker-credential-absent could not run"):
        find_login("r.example", environ)
