"""The newest published bundle of a target, read for `plan` and `apply`.

A bundle is read through `verify_bundle` with the keys the caller trusts.
When that fails (no key given, a rotated key, an expired bundle) the plan
still compares against its content, read with the same safe unpacker, and
says loudly that the base is unverified. Nothing else is ever read unverified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aivault_ops.bundle import (
    BundleError,
    PublicKey,
    newest_bundle,
    read_bundle_file,
    verify_bundle,
)
from aivault_ops.bundle.manifest import parse_manifest
from aivault_ops.bundle.paths import MANIFEST, POLICY
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


def read_base(target: Path, trusted_keys: Sequence[PublicKey]) -> PublishedBase | None:
    """The newest bundle in `target`, verified if the trusted keys allow it."""
    newest = newest_bundle(target) if target.is_dir() else None
    if newest is None:
        return None
    serial, path = newest
    data = read_bundle_file(path)
    try:
        verified = verify_bundle(data, trusted_keys=trusted_keys, now=datetime.now(UTC))
    except BundleError as error:
        return _unverified(path, serial, data, f"{error.code}: {error.message}")
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
