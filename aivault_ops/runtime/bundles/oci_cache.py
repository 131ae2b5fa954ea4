"""The last good bundle pulled from a registry, kept in the state dir.

`<state-dir>/oci-cache/bundle.tar.gz` and `bundle.json` (the source
reference, the manifest digest, the serial and the bundle's sha256). Each
is written to a unique temporary name and renamed, so workers sharing the
state dir never see half a file; a pair that does not match (a crash
between the two renames, another worker's write) is ignored. The cached
bundle is verified at start like any other: the cache is a convenience,
never a trust decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aivault_ops.atomic_write import replace_file
from aivault_ops.bundle.source import MAX_BUNDLE_BYTES, read_bundle_file
from aivault_ops.errors import AivaultError

CACHE_DIR: Final = "oci-cache"
BUNDLE_FILE: Final = "bundle.tar.gz"
META_FILE: Final = "bundle.json"


@dataclass(frozen=True)
class CachedBundle:
    """A bundle and where it came from."""

    reference: str
    digest: str  # the manifest digest it was pulled under
    serial: int
    data: bytes


class BundleCache:
    """One cached bundle per state dir (the last one accepted from the source)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / CACHE_DIR

    def save(self, bundle: CachedBundle) -> None:
        """Replace the cached bundle (bundle bytes first, then the description)."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        meta = {
            "reference": bundle.reference,
            "digest": bundle.digest,
            "serial": bundle.serial,
            "sha256": hashlib.sha256(bundle.data).hexdigest(),
        }
        replace_file(self.directory / BUNDLE_FILE, bundle.data)
        replace_file(self.directory / META_FILE, json.dumps(meta, sort_keys=True).encode())

    def load(self, reference: str) -> CachedBundle | None:
        """The cached bundle of `reference`; None when there is none, or another source's."""
        try:
            meta = json.loads((self.directory / META_FILE).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            return None
        if not isinstance(meta, dict) or meta.get("reference") != reference:
            return None
        try:
            data = read_bundle_file(self.directory / BUNDLE_FILE, MAX_BUNDLE_BYTES)
        except AivaultError:
            return None
        serial, digest = meta.get("serial"), meta.get("digest")
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None
        if type(serial) is not int or not isinstance(digest, str):
            return None
        return CachedBundle(reference, digest, serial, data)
