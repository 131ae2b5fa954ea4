"""The published bundles of a target, read for `plan` and `apply`.

With trusted keys, the base of a plan is the newest bundle that verifies
with them; newer bundles that do not verify are reported and never compared
against (apply then publishes above them, so the target's newest bundle is
one the runtimes accept). Without any key (`plan` with no `--trust` and a
Project that trusts none) the newest bundle is read with the same safe
unpacker and the plan says loudly that its base is unverified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aivault_ops.bundle import (
    BundleError,
    BundleRef,
    BundleSource,
    PublicKey,
    verify_bundle,
)
from aivault_ops.bundle.manifest import parse_manifest
from aivault_ops.bundle.paths import MANIFEST, POLICY
from aivault_ops.bundle.source import DirectoryBundleSource
from aivault_ops.bundle.unpack import Limits, read_entries
from aivault_ops.canonical_json import JsonError, loads_strict
from aivault_ops.errors import AivaultError


@dataclass(frozen=True)
class PublishedBase:
    """The newest bundle in a target: what a plan compares against."""

    path: Path
    serial: int
    revision: str
    policy: Mapping[str, Any]
    unverified_reason: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "bundle": self.path.name,
            "serial": self.serial,
            "revision": self.revision,
            "verified": self.unverified_reason is None,
        }


# How many of the newest bundles are tried before giving up on finding a verified base.
MAX_CHECKED = 20


@dataclass(frozen=True)
class TargetState:
    """What a target holds: the base to compare against, and what was passed over."""

    base: PublishedBase | None
    newest_serial: int  # highest serial of any bundle file (0: none); apply publishes above it
    unverifiable: tuple[tuple[Path, str], ...] = ()  # newer than the base; (file, reason)

    @property
    def next_serial(self) -> int:
        """Above every bundle file in the target, verified or not."""
        return self.newest_serial + 1


class ListedSource(BundleSource, Protocol):
    """A bundle source that can name each bundle (a file, or an OCI tag)."""

    def path(self, ref: BundleRef) -> Path:
        """Where `ref` lives, for messages (`.name` is what a plan shows)."""
        ...


def read_target(target: Path | ListedSource, trusted_keys: Sequence[PublicKey]) -> TargetState:
    """The newest bundle that verifies with `trusted_keys` (see the module docstring).

    `target` is a bundle directory, or any listed source (an OCI repository).
    """
    source = DirectoryBundleSource(target) if isinstance(target, Path) else target
    refs = source.list() if not isinstance(target, Path) or target.is_dir() else []
    if not refs:
        return TargetState(None, 0)
    newest = refs[-1].serial
    if not trusted_keys:
        path = source.path(refs[-1])
        data = source.read(refs[-1])
        outcome = _verify(path, newest, data, trusted_keys)
        base = outcome if isinstance(outcome, PublishedBase) else None
        return TargetState(base or _unverified(path, newest, data, str(outcome)), newest)
    skipped: list[tuple[Path, str]] = []
    for ref in reversed(refs[-MAX_CHECKED:]):
        path = source.path(ref)
        try:
            outcome = _verify(path, ref.serial, source.read(ref), trusted_keys)
        except BundleError as error:
            outcome = f"{error.code}: {error.message}"
        if isinstance(outcome, PublishedBase):
            return TargetState(outcome, newest, tuple(skipped))
        skipped.append((path, outcome))
    return TargetState(None, newest, tuple(skipped))


def _verify(path: Path, serial: int, data: bytes, keys: Sequence[PublicKey]) -> PublishedBase | str:
    """The verified base, or why it did not verify."""
    try:
        verified = verify_bundle(data, trusted_keys=keys, now=datetime.now(UTC))
    except BundleError as error:
        return f"{error.code}: {error.message}"
    return PublishedBase(path, serial, verified.manifest.revision, verified.policy, None)


def _unverified(path: Path, serial: int, data: bytes, reason: str) -> PublishedBase:
    try:
        entries = read_entries(data, Limits())
        manifest = parse_manifest(entries[MANIFEST])
        policy = loads_strict(entries[POLICY])
    except (BundleError, JsonError, KeyError) as error:
        raise AivaultError(
            f"{path}: the newest bundle cannot be read ({error}); fix or remove it first"
        ) from None
    if not isinstance(policy, dict):
        raise AivaultError(f"{path}: policy.json is not an object")
    return PublishedBase(path, serial, manifest.revision, policy, reason)
