"""Bundle bytes → an `ActivePolicy`: verify, check the serial, decrypt, build.

One code path for every load (start and reload): `verify_bundle` (no
unsigned mode), the serial rule against the persisted floor and the active
policy, `policy.json` checked against its schema and typed once
(`PolicyDocument`), decryption of only the secrets the policy uses,
`ActivePolicy.build`. Any failure raises an `AivaultError` and changes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aivault_ops.bundle.errors import BundleError, PolicyRejected
from aivault_ops.bundle.keys import PublicKey
from aivault_ops.bundle.source import BundleRef, read_bundle_file, serial_of
from aivault_ops.bundle.verify import VerifiedBundle, verify_bundle
from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.auth.base import AuthServices
from aivault_ops.runtime.bundles.state import Floor
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.scaffold import PLACEHOLDER_VALUE
from aivault_ops.secret import Secret
from aivault_ops.sops import decrypt_bytes
from aivault_ops.sops.identities import Identities


class RollbackRefused(BundleError):
    """A bundle whose serial is not above the active one or the persisted floor."""

    code = "E-BUNDLE-ROLLBACK"


class SerialNameMismatch(BundleError):
    """A bundle file whose name and manifest disagree on the serial."""

    code = "E-BUNDLE-SERIAL-NAME"


class SecretMissing(BundleError):
    """The policy names a secret its SOPS file does not hold."""

    code = "E-BUNDLE-SECRET-MISSING"


@dataclass(frozen=True)
class BundleDirectory:
    """`bundle-<serial>.tar.gz` files in one directory, symlinks followed.

    Symlinks are followed so a Kubernetes-style `..data` swap works; what
    they point to is verified like any other bundle.
    """

    directory: Path

    def list(self) -> list[BundleRef]:
        """Published bundles by serial (regular files or symlinks to them)."""
        refs = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                serial = serial_of(entry.name)
                if serial is not None and entry.is_file(follow_symlinks=True):
                    refs.append(BundleRef(serial, entry.name))
        return sorted(refs)

    def read(self, ref: BundleRef) -> bytes:
        """The bytes of one bundle (size-limited, unverified)."""
        return read_bundle_file(self.directory / ref.name)

    def fingerprint(self) -> tuple[tuple[object, ...], ...]:
        """Name, link target, inode, size and mtime of every entry: changes on any swap."""
        rows: list[tuple[object, ...]] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                rows.append((entry.name, *_describe(entry)))
        return tuple(sorted(rows, key=lambda row: str(row[0])))


def _describe(entry: os.DirEntry[str]) -> tuple[object, ...]:
    try:
        target = str(Path(entry.path).readlink()) if entry.is_symlink() else ""
        info = entry.stat(follow_symlinks=True)
    except OSError:
        return ("", 0, 0, 0)
    return (target, info.st_ino, info.st_size, info.st_mtime_ns)


@dataclass(frozen=True)
class Loaded:
    """A policy ready to activate, with the floor to persist for it."""

    policy: ActivePolicy
    floor: Floor
    placeholders: tuple[str, ...] = ()


def check_serial(serial: int, digest: str, floor: Floor | None, active: int | None) -> None:
    """Refuse a bundle that is not newer than what was accepted before.

    Prevents rollback to an older (validly signed) policy, also across
    restarts: the serial must exceed the active one, and may not be below
    the persisted floor; at the floor only the very bundle accepted (same
    sha256) may be re-activated after a restart.
    """
    if active is not None and serial <= active:
        raise RollbackRefused(f"serial {serial} is not newer than the active serial {active}")
    if floor is None or serial > floor.serial:
        return
    if serial < floor.serial:
        raise RollbackRefused(f"serial {serial} is below the accepted serial {floor.serial}")
    if digest != floor.sha256:
        raise RollbackRefused(f"serial {serial} differs from the bundle accepted with that serial")


@dataclass(frozen=True)
class Loader:
    """Everything a load needs: trust, identities, a clock and auth services (injected)."""

    trusted_keys: Sequence[PublicKey]
    identities: Identities
    clock: Callable[[], datetime]
    services: AuthServices | None = None

    def load(
        self, ref: BundleRef, data: bytes, *, floor: Floor | None, active: int | None
    ) -> Loaded:
        """Verify and build one bundle; raises an `AivaultError` saying why it was refused."""
        verified = verify_bundle(data, trusted_keys=self.trusted_keys, now=self.clock())
        serial = verified.manifest.serial
        if serial != ref.serial:
            raise SerialNameMismatch(f"the file is named for serial {ref.serial}, holds {serial}")
        digest = hashlib.sha256(data).hexdigest()
        check_serial(serial, digest, floor, active)
        document = read_policy(verified)
        secrets = self.decrypt_needed(verified, document)
        policy = ActivePolicy.build(
            manifest=verified.manifest.to_json(),
            policy=document,
            keyid=verified.keyid,
            secrets=secrets,
            services=self.services,
        )
        return Loaded(policy, Floor(serial, digest), placeholders(secrets))

    def decrypt_needed(
        self, verified: VerifiedBundle, document: PolicyDocument
    ) -> dict[tuple[str, str], Secret]:
        """Decrypt only the SOPS files the policy uses, keep only the names it needs."""
        names_by_file: dict[str, list[str]] = {}
        for path, name in sorted(ActivePolicy.needed_secrets(document)):
            names_by_file.setdefault(path, []).append(name)
        secrets: dict[tuple[str, str], Secret] = {}
        for path, names in names_by_file.items():
            values = self._decrypt_file(verified, document, path)
            for name in names:
                if name not in values:
                    raise SecretMissing(f"{path} has no secret named {name!r}")
                secrets[(path, name)] = values[name]
        return secrets

    def _decrypt_file(
        self, verified: VerifiedBundle, document: PolicyDocument, path: str
    ) -> Mapping[str, Secret]:
        if path not in verified.files:
            raise SecretMissing(f"the policy uses {path}, which the bundle does not hold")
        decrypted = decrypt_bytes(
            verified.files[path],
            format=_file_format(document, path),
            identities=self.identities,
            source_name=path,
        )
        return decrypted.secrets()


def placeholders(secrets: Mapping[tuple[str, str], Secret]) -> tuple[str, ...]:
    """`path#NAME` of every secret still holding the value `init` scaffolds (names only)."""
    return tuple(
        f"{path}#{name}"
        for (path, name), secret in sorted(secrets.items())
        if secret.reveal() in (PLACEHOLDER_VALUE, PLACEHOLDER_VALUE.encode())
    )


def read_policy(verified: VerifiedBundle) -> PolicyDocument:
    """The verified bundle's `policy.json`, checked against its schema and typed.

    A signed bundle whose policy this runtime cannot read (another format, a
    field it does not know) is refused as `E-BUNDLE-POLICY`, naming the first
    problem, and the current policy keeps serving.
    """
    try:
        return PolicyDocument.from_json(verified.policy)
    except AivaultError as error:
        raise PolicyRejected(error.message, hint=error.hint) from None


def _file_format(document: PolicyDocument, path: str) -> str:
    entry = document.secret_files.get(path)
    if entry is None:
        raise AivaultError(f"policy.json: secretFiles has no format for {path}")
    return entry.format
