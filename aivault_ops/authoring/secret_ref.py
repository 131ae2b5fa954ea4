"""`--secret-ref`: `FILE#KEY`, a bare secret name, or aivault's `vault:secret:NAME`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.suggest import did_you_mean

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF = re.compile(r"^[^#\s]+#[A-Za-z_][A-Za-z0-9_]*$")
VAULT_PREFIX = "vault:secret:"


@dataclass(frozen=True)
class SecretRef:
    """Either a full `FILE#KEY` reference (`file` set) or a name still to be located."""

    name: str
    file: str | None = None

    def render(self) -> str:
        assert self.file is not None
        return f"{self.file}#{self.name}"


def parse_secret_ref(text: str) -> SecretRef:
    """`FILE#KEY` as given; `NAME` and `vault:secret:NAME` as a name to locate."""
    if "#" in text:
        if not _REF.match(text):
            raise UsageError(f"--secret-ref {text!r}: use FILE#KEY, NAME or vault:secret:NAME")
        file, _, name = text.rpartition("#")
        return SecretRef(name, file)
    name = text.removeprefix(VAULT_PREFIX)
    if not _NAME.match(name):
        raise UsageError(
            f"--secret-ref {text!r}: a secret name is letters, digits and _"
            " (use FILE#KEY, NAME or vault:secret:NAME)"
        )
    return SecretRef(name)


def locate(ref: SecretRef, holders: Mapping[str, Sequence[str]]) -> SecretRef:
    """`ref` with its file: the one SOPS file (of `holders`, name → files) holding it."""
    if ref.file is not None:
        return ref
    files = holders.get(ref.name, ())
    if len(files) == 1:
        return SecretRef(ref.name, files[0])
    if files:
        raise AivaultError(
            f"{ref.name} is held by more than one SOPS file: {', '.join(files)}",
            hint=f"pass --secret-ref FILE#{ref.name}",
        )
    raise AivaultError(
        f"no SOPS file of the policy repo holds {ref.name}" + did_you_mean(ref.name, holders),
        hint=f"create it first: aivault-ops secrets create --name {ref.name}",
    )
