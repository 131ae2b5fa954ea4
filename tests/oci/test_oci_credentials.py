"""Registry credentials: the environment, the docker config, a credential helper; a registry
that asks for Basic auth (htpasswd) gets them, and a wrong password is refused without echo."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engines import Registry

from aivault_ops.errors import AivaultError
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.credentials import Login, find_login
from aivault_ops.oci.errors import OciDenied
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository, open_repository

PASSWORD = "s3cret-registry-pass"


def docker_config(directory: Path, config: dict[str, object]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(directory), "HOME": str(directory.parent)}


def encoded(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_environment_comes_first(tmp_path: Path) -> None:
    environ = docker_config(tmp_path / "d", {"auths": {"r.example": {"auth": encoded("a", "b")}}})
    environ |= {"AIVAULT_OPS_REGISTRY_USERNAME": "ci", "AIVAULT_OPS_REGISTRY_PASSWORD": "pw"}
    login = find_login("r.example", environ)
    assert login == Login("ci", "pw", "$AIVAULT_OPS_REGISTRY_USERNAME")
    assert "pw" not in repr(login)


def test_a_password_file_is_read_and_a_missing_password_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    environ = {
        "AIVAULT_OPS_REGISTRY_USERNAME": "ci",
        "AIVAULT_OPS_REGISTRY_PASSWORD_FILE": str(tmp_path / "token"),
    }
    assert find_login("r.example", environ).password == "from-file"  # type: ignore[union-attr]
    with pytest.raises(AivaultError, match="neither AIVAULT_OPS_REGISTRY_PASSWORD"):
        find_login("r.example", {"AIVAULT_OPS_REGISTRY_USERNAME": "ci"})


def test_the_docker_config_auths_entry_for_the_registry(tmp_path: Path) -> None:
    config = {"auths": {"r.example:5000": {"auth": encoded("robot", "tok:en")}}}
    environ = docker_config(tmp_path / "d", config)
    assert find_login("r.example:5000", environ) == Login(
        "robot", "tok:en", f"{tmp_path / 'd' / 'config.json'} (auths)"
    )
    assert find_login("other.example", environ) is None
    assert find_login("r.example:5000", {"HOME": str(tmp_path / "nowhere")}) is None


def test_a_credential_helper_is_asked_as_docker_asks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread host\n"
        '[ "$1" = get ] && [ "$host" = r.example ] &&'
        ' echo \'{"Username": "helper-user", "Secret": "helper-secret"}\' && exit 0\n'
        "exit 1\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    environ = docker_config(tmp_path / "d", {"credHelpers": {"r.example": "fake"}})
    login = find_login("r.example", environ)
    assert (login.username, login.password) == ("helper-user", "helper-secret")  # type: ignore[union-attr]
    environ = docker_config(tmp_path / "e", {"credsStore": "fake"})
    assert find_login("unknown.example", environ) is None


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[Registry]:
    (tmp_path / "registry").mkdir()
    server = Registry(tmp_path / "registry", users={"robot": PASSWORD})
    server.start()
    yield server
    server.stop()


def test_a_basic_auth_registry_takes_the_credentials(
    basic_registry: Registry, tmp_path: Path
) -> None:
    reference = parse_reference(basic_registry.url("auth/policy"))
    environ = docker_config(
        tmp_path / "d", {"auths": {reference.registry: {"auth": encoded("robot", PASSWORD)}}}
    )
    repository = open_repository(reference, plain_http=True, environ=environ)
    try:
        repository.publish(b"bundle", serial=1, revision="r", environment=None)
        assert repository.pull("latest").data == b"bundle"
    finally:
        repository.client.close()

    wrong = OciRepository(
        RegistryClient(reference, login=Login("robot", "wrong-pass", "test"), plain_http=True)
    )
    anonymous = OciRepository(RegistryClient(reference, plain_http=True))
    try:
        for repository in (wrong, anonymous):
            with pytest.raises(OciDenied) as denied:
                repository.list()
            assert "wrong-pass" not in denied.value.diagnostics()
            assert PASSWORD not in denied.value.diagnostics()
    finally:
        wrong.client.close()
        anonymous.client.close()
