"""Helpers for the SOPS tests: the copied vectors, age-keygen keys, the real sops binary."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from aivault_ops.sops import Identities, load_identities

VECTORS = Path(__file__).parent / "vectors"
RECIPIENT_1 = "age1zr62m06yg4wffckhngvvyv6j96kca6dydckenympyrvtnw9ep9qsk6mjqa"
RECIPIENT_2 = "age1sy5tnkhtfy6d097xtl233etl3j26ns0dmg6tzewxl9yeyc26lcwq37lcz7"


@dataclass(frozen=True)
class AgeKey:
    """A key pair made by the real age-keygen."""

    identity_file: Path
    recipient: str


def make_age_key(directory: Path, name: str = "key.txt") -> AgeKey:
    """Run age-keygen and return the identity file and its recipient."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    return AgeKey(path, recipient)


def vector_environ() -> dict[str, str]:
    """The environment that opens every vector (both X25519 keys and the ssh key)."""
    keys = (VECTORS / "age-test-identity.txt").read_text() + (
        VECTORS / "age-test-identity-2.txt"
    ).read_text()
    return {
        "SOPS_AGE_KEY": keys,
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(VECTORS / "ssh-test-ed25519"),
        "HOME": "/nonexistent",
    }


def identities_for(*keys: AgeKey) -> Identities:
    """Identities from age-keygen files only (no environment, no home directory)."""
    text = "".join(key.identity_file.read_text() for key in keys)
    return load_identities(environ={"SOPS_AGE_KEY": text, "HOME": "/nonexistent"})


def sops_env(home: Path, *keys: AgeKey, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the sops binary: its own HOME, only the given keys."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SOPS_")}
    env.update(
        HOME=str(home), SOPS_DISABLE_VERSION_CHECK="1", XDG_CONFIG_HOME=str(home / ".config")
    )
    if keys:
        env["SOPS_AGE_KEY"] = "".join(key.identity_file.read_text() for key in keys)
    env.update(extra or {})
    return env


def run_sops(
    args: Sequence[str],
    *,
    cwd: Path,
    keys: Sequence[AgeKey] = (),
    extra_env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run the real sops binary; fails the test with its stderr when `check` and it fails."""
    home = cwd / ".sops-home"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        ["sops", *args],
        cwd=cwd,
        env=sops_env(home, *keys, extra=extra_env),
        capture_output=True,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"sops {' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}")
    return result


def write_config(directory: Path, rules: str) -> Path:
    """Write a `.sops.yaml` with the given creation_rules body."""
    path = directory / ".sops.yaml"
    path.write_text("creation_rules:\n" + rules)
    return path
