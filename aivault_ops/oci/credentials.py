"""Registry credentials: the environment, else the docker config. Never the command line.

Order: `AIVAULT_OPS_REGISTRY_USERNAME` with `AIVAULT_OPS_REGISTRY_PASSWORD`
(or `AIVAULT_OPS_REGISTRY_PASSWORD_FILE`, re-read on every login so a
rotated Kubernetes Secret is picked up); else the docker config
(`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): a
`credHelpers` entry for the host, an `auths` entry, then `credsStore`, as
`docker` itself resolves them. No credentials means anonymous access.

A `Login` never shows its password: its repr names the user only.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aivault_ops.bounded_read import read_at_most
from aivault_ops.errors import AivaultError

ENV_USERNAME: Final = "AIVAULT_OPS_REGISTRY_USERNAME"
ENV_PASSWORD: Final = "AIVAULT_OPS_REGISTRY_PASSWORD"  # noqa: S105 (a variable's name)
ENV_PASSWORD_FILE: Final = "AIVAULT_OPS_REGISTRY_PASSWORD_FILE"  # noqa: S105
HELPER_TIMEOUT_S: Final = 30.0
MAX_CONFIG_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Login:
    """A username and password (or identity token) for one registry."""

    username: str
    password: str = field(repr=False)
    source: str  # where it came from, for messages: never the value

    def basic(self) -> str:
        """The `Authorization: Basic` credential."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def find_login(registry: str, environ: Mapping[str, str]) -> Login | None:
    """The credentials for `registry` (host[:port]), or None for anonymous access."""
    from_env = _from_environment(environ)
    if from_env is not None:
        return from_env
    path = docker_config_path(environ)
    if path is None:
        return None
    return _from_docker_config(path, _read_config(path), registry)


def docker_config_path(environ: Mapping[str, str]) -> Path | None:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, when it exists."""
    if environ.get("DOCKER_CONFIG"):
        path = Path(environ["DOCKER_CONFIG"]) / "config.json"
    else:
        path = Path(environ.get("HOME") or Path.home()) / ".docker" / "config.json"
    return path if path.is_file() else None


def _from_environment(environ: Mapping[str, str]) -> Login | None:
    username = environ.get(ENV_USERNAME)
    if not username:
        return None
    password = environ.get(ENV_PASSWORD)
    if password is None and environ.get(ENV_PASSWORD_FILE):
        file = Path(environ[ENV_PASSWORD_FILE])
        try:
            password = file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise AivaultError(f"{ENV_PASSWORD_FILE}={file}: {error.strerror}") from None
    if not password:
        raise AivaultError(
            f"{ENV_USERNAME} is set but neither {ENV_PASSWORD} nor {ENV_PASSWORD_FILE} is"
        )
    return Login(username, password, f"${ENV_USERNAME}")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = json.loads(read_at_most(handle, MAX_CONFIG_BYTES - 1))
    except (OSError, ValueError):
        raise AivaultError(f"{path}: not a readable docker config (JSON)") from None
    return data if isinstance(data, dict) else {}


def _from_docker_config(path: Path, config: dict[str, Any], registry: str) -> Login | None:
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(registry), str):
        return _from_helper(helpers[registry], registry)
    auths = config.get("auths")
    entry = auths.get(registry) if isinstance(auths, dict) else None
    if isinstance(entry, dict):
        login = _from_auth_entry(entry, f"{path} (auths)")
        if login is not None:
            return login
    store = config.get("credsStore")
    return _from_helper(store, registry) if isinstance(store, str) and store else None


def _from_auth_entry(entry: dict[str, Any], source: str) -> Login | None:
    if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
        return Login("<token>", entry["identitytoken"], source)
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            username, colon, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            raise AivaultError(f"{source}: an `auth` value is not base64 user:password") from None
        return Login(username, password, source) if colon else None
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Login(entry["username"], entry["password"], source)
    return None


def _from_helper(helper: str, registry: str) -> Login | None:
    """Ask `docker-credential-<helper> get`, as docker does."""
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run(
            [program, "get"],
            input=registry.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        raise AivaultError(f"the docker credential helper {program} could not run") from None
    if result.returncode != 0:
        return None  # the helper knows no credentials for this registry
    try:
        payload = json.loads(result.stdout)
        return Login(str(payload["Username"]), str(payload["Secret"]), program)
    except (ValueError, KeyError, TypeError):
        raise AivaultError(f"{program} answered something that is not its JSON") from None
