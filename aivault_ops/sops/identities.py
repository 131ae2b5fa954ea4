"""Age identities gathered from every place sops looks, in sops' order.

sops tries all sources together: a working key in any of them opens the
file, even when another source holds a wrong key. A missing
`SOPS_AGE_KEY_FILE` is only reported when nothing else was found.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyrage

from aivault_ops.sops.errors import NoIdentity

# The PEM header that marks an OpenSSH private key file (what the parser looks
# for); a marker, not key material.
_SSH_PEM = b"-----BEGIN OPENSSH PRIVATE KEY-----"


@dataclass(frozen=True)
class Identities:
    """Loaded identities (opaque pyrage objects) and where they came from."""

    keys: tuple[object, ...]
    sources: tuple[str, ...]
    searched: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Identities({len(self.keys)} keys from {', '.join(self.sources)})"


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or Path.home())


def default_key_file(environ: Mapping[str, str]) -> Path:
    """sops' default age key file: `$XDG_CONFIG_HOME/sops/age/keys.txt` or `~/.config/…`."""
    base = environ.get("XDG_CONFIG_HOME") or str(_home(environ) / ".config")
    return Path(base) / "sops" / "age" / "keys.txt"


def parse_identity_text(text: str, origin: str) -> list[object]:
    """Identities from age-keygen format text (comments and CRLF allowed)."""
    keys: list[object] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line != line.upper():
                raise ValueError("age secret keys are upper case")
            keys.append(pyrage.x25519.Identity.from_str(line))
        except Exception as error:  # pyrage raises its own untyped errors
            raise NoIdentity(f"{origin}: line {number} is not an age identity") from error
    return keys


def _parse_file(path: Path, origin: str) -> list[object]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NoIdentity(f"{origin}: cannot read: {error.strerror}") from error
    if data.lstrip().startswith(_SSH_PEM):
        try:
            return [pyrage.ssh.Identity.from_buffer(data)]
        except Exception as error:  # pyrage raises its own untyped errors
            raise NoIdentity(f"{origin}: not a usable OpenSSH private key") from error
    return parse_identity_text(data.decode("utf-8", errors="replace"), origin)


class _Collector:
    def __init__(self) -> None:
        self.keys: list[object] = []
        self.sources: list[str] = []
        self.searched: list[str] = []
        self.missing: list[str] = []

    def add_file(
        self, path: Path, label: str, *, required: bool = False, named: bool = False
    ) -> None:
        self.searched.append(label)
        if not path.is_file():
            if required:
                raise NoIdentity(f"identity file {path} does not exist")
            if named:
                self.missing.append(f"{label} ({path} does not exist)")
            return
        self._add(_parse_file(path, str(path)), label)

    def add_text(self, text: str, label: str) -> None:
        self.searched.append(label)
        self._add(parse_identity_text(text, label), label)

    def _add(self, keys: list[object], label: str) -> None:
        if keys:
            self.keys.extend(keys)
            self.sources.append(label)


def load_identities(
    identity_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Identities:
    """Collect identities: `--identity`, then sops' sources; NoIdentity when none is found."""
    env = os.environ if environ is None else environ
    found = _Collector()
    if identity_file is not None:
        found.add_file(identity_file, f"--identity {identity_file}", required=True)
    _ssh_sources(found, env)
    if env.get("SOPS_AGE_KEY"):
        found.add_text(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY")
    else:
        found.searched.append("SOPS_AGE_KEY")
    if env.get("SOPS_AGE_KEY_FILE"):
        found.add_file(Path(env["SOPS_AGE_KEY_FILE"]), "SOPS_AGE_KEY_FILE", named=True)
    else:
        found.searched.append("SOPS_AGE_KEY_FILE")
    if env.get("SOPS_AGE_KEY_CMD"):
        found.add_text(_run_key_command(env["SOPS_AGE_KEY_CMD"]), "SOPS_AGE_KEY_CMD")
    else:
        found.searched.append("SOPS_AGE_KEY_CMD")
    default = default_key_file(env)
    found.add_file(default, str(default))
    _user_config_sources(found, env)
    if not found.keys:
        detail = "; ".join(found.missing)
        raise NoIdentity(
            "no age identity found (looked in " + ", ".join(found.searched) + ")",
            hint=(detail + "; " if detail else "")
            + "pass --identity FILE or set SOPS_AGE_KEY_FILE",
        )
    return Identities(tuple(found.keys), tuple(found.sources), tuple(found.searched))


def _user_config_sources(found: _Collector, env: Mapping[str, str]) -> None:
    """The identity files `init --identity-out` recorded in the per-user config (last)."""
    from aivault_ops.errors import AivaultError
    from aivault_ops.user_config import config_path, identity_files

    config = config_path(env)
    try:
        files = identity_files(config)
    except AivaultError as error:
        found.searched.append(str(config))
        found.missing.append(error.message)
        return
    if not files:
        found.searched.append(str(config))
    for path in files:
        label = f"{path} (recorded in {config})"
        if not path.is_file():
            found.searched.append(label)
            found.missing.append(f"{path} does not exist (recorded in {config})")
            continue
        found.add_file(path, label)


def _run_key_command(command: str) -> str:
    """stdout of `SOPS_AGE_KEY_CMD` (split like a shell command line, run without a shell)."""
    try:
        result = subprocess.run(shlex.split(command), capture_output=True, check=False, timeout=60)
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        raise NoIdentity(f"SOPS_AGE_KEY_CMD could not be run ({type(error).__name__})") from error
    if result.returncode != 0:
        raise NoIdentity(f"SOPS_AGE_KEY_CMD failed with exit status {result.returncode}")
    return result.stdout.decode("utf-8", errors="replace")


def _ssh_sources(found: _Collector, env: Mapping[str, str]) -> None:
    if env.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        found.add_file(
            Path(env["SOPS_AGE_SSH_PRIVATE_KEY_FILE"]), "SOPS_AGE_SSH_PRIVATE_KEY_FILE", named=True
        )
        return
    found.searched.append("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
    for name in ("id_ed25519", "id_rsa"):
        path = _home(env) / ".ssh" / name
        found.add_file(path, str(path))
