"""The per-user config file: `$XDG_CONFIG_HOME/aivault-ops/config.json`.

`init --identity-out F` records F here so that `secrets` commands find the
identity without flags. The file holds paths, never key material; it is
written 0600 in a 0700 directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from aivault_ops.atomic_write import replace_file
from aivault_ops.errors import AivaultError

IDENTITY_FILES = "identityFiles"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/aivault-ops/config.json`, else `~/.config/aivault-ops/config.json`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "aivault-ops" / "config.json"


def read_config(path: Path) -> dict[str, object]:
    """The config as a JSON object; `{}` when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise AivaultError(f"{path}: cannot read: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AivaultError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, dict):
        raise AivaultError(f"{path}: must hold a JSON object")
    return data


def identity_files(path: Path) -> list[Path]:
    """The identity files recorded in the config at `path`, in the order they were added."""
    files = read_config(path).get(IDENTITY_FILES, [])
    if not isinstance(files, list) or not all(isinstance(item, str) for item in files):
        raise AivaultError(f"{path}: {IDENTITY_FILES} must be a list of file paths")
    return [Path(item) for item in files]


def record_identity_file(identity: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Add `identity` (made absolute) to the config's identity files; return the config path."""
    from aivault_ops.private_files import make_private_parents

    path = config_path(environ)
    config = read_config(path)
    files = [str(item) for item in identity_files(path)]
    absolute = str(identity.absolute())
    if absolute not in files:
        config[IDENTITY_FILES] = [*files, absolute]
        try:
            make_private_parents(path)
            _write_private_json(path, config)
        except OSError as error:
            raise AivaultError(f"{path}: cannot write: {error.strerror}") from None
    return path


def _write_private_json(path: Path, data: Mapping[str, object]) -> None:
    replace_file(path, (json.dumps(data, indent=2) + "\n").encode())
