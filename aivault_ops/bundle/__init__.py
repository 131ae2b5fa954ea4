"""Signed, deterministic policy bundles: build, verify, publish (docs/bundles.md).

`archive` builds, `verify` checks (the only way to read a bundle's content),
`publish` writes into a target directory, `source` lists and reads what is
published, `keys` handles Ed25519 keys.
"""

from __future__ import annotations

from aivault_ops.bundle.archive import build_bundle
from aivault_ops.bundle.errors import BundleError
from aivault_ops.bundle.keys import (
    PublicKey,
    SigningKey,
    load_signing_key,
    resolve_public_key,
    save_signing_key,
)
from aivault_ops.bundle.manifest import FORMAT, BundleManifest
from aivault_ops.bundle.publish import newest_bundle, publish_bundle, target_lock
from aivault_ops.bundle.source import (
    BundleRef,
    BundleSource,
    DirectoryBundleSource,
    read_bundle_file,
)
from aivault_ops.bundle.unpack import Limits
from aivault_ops.bundle.verify import VerifiedBundle, verify_bundle

__all__ = [
    "FORMAT",
    "BundleError",
    "BundleManifest",
    "BundleRef",
    "BundleSource",
    "DirectoryBundleSource",
    "Limits",
    "PublicKey",
    "SigningKey",
    "VerifiedBundle",
    "build_bundle",
    "load_signing_key",
    "newest_bundle",
    "publish_bundle",
    "read_bundle_file",
    "resolve_public_key",
    "save_signing_key",
    "target_lock",
    "verify_bundle",
]
