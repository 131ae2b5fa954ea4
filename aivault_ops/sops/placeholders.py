"""Secrets that still hold the value `init` put in the scaffold."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from aivault_ops.scaffold import PLACEHOLDER_VALUE
from aivault_ops.sops.errors import SopsError
from aivault_ops.sops.identities import Identities, load_identities
from aivault_ops.sops.sopsfile import decrypt_file


def _available_identities() -> Identities | None:
    try:
        return load_identities()
    except SopsError:
        return None


def placeholder_secrets(files: Iterable[Path]) -> list[tuple[str, Path]]:
    """(name, file) of each secret still equal to the scaffold placeholder.

    Needs an identity: with none, or a file it cannot open, nothing is
    reported for that file (this is a reminder, not a check that gates).
    """
    identities = _available_identities()
    if identities is None:
        return []
    found: list[tuple[str, Path]] = []
    for path in files:
        try:
            secrets = decrypt_file(path, identities).secrets()
        except SopsError:
            continue
        for name, secret in secrets.items():
            value = secret.reveal()
            if isinstance(value, str) and hmac.compare_digest(
                value.encode("utf-8", "surrogatepass"), PLACEHOLDER_VALUE.encode()
            ):
                found.append((name, path))
    return found
