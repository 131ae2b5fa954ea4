"""Where bundles come from: a directory now, an OCI registry later.

Readers (`plan`, `apply`, the runtime) see only `BundleSource`; publishing a
bundle is `publish.py`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from aivault_ops.bounded_read import read_at_most
from aivault_ops.bundle.errors import BundleReadError, BundleTooLarge

MAX_BUNDLE_BYTES: Final = 64 * 1024 * 1024
_BUNDLE_NAME = re.compile(r"bundle-(0|[1-9][0-9]{0,18})\.tar\.gz")


def bundle_file_name(serial: int) -> str:
    """The published name of a bundle: `bundle-<serial>.tar.gz`."""
    return f"bundle-{serial}.tar.gz"


def serial_of(name: str) -> int | None:
    """The serial in a published bundle's name; None for any other name.

    Only the canonical spelling counts (no leading zeros), so one serial has
    one file name; temporary files never match.
    """
    match = _BUNDLE_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, order=True)
class BundleRef:
    """One published bundle: its serial and its name within the source."""

    serial: int
    name: str


class BundleSource(Protocol):
    """A place that holds published bundles."""

    def list(self) -> list[BundleRef]:
        """Every published bundle, oldest (lowest serial) first."""
        ...

    def read(self, ref: BundleRef) -> bytes:
        """The bytes of one bundle (unverified: pass them to `verify_bundle`)."""
        ...


@dataclass(frozen=True)
class DirectoryBundleSource:
    """Bundles as `bundle-<serial>.tar.gz` regular files in one directory."""

    directory: Path
    max_bytes: int = MAX_BUNDLE_BYTES

    def list(self) -> list[BundleRef]:
        """Published bundles, by serial; other files, symlinks and temp files are ignored."""
        refs = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    serial = serial_of(entry.name)
                    if serial is not None and entry.is_file(follow_symlinks=False):
                        refs.append(BundleRef(serial, entry.name))
        except OSError as error:
            raise BundleReadError(
                f"{self.directory}: cannot list bundles: {error.strerror}"
            ) from None
        return sorted(refs)

    def path(self, ref: BundleRef) -> Path:
        """The file of `ref`."""
        return self.directory / ref.name

    def read(self, ref: BundleRef) -> bytes:
        """Read one bundle, refusing files over `max_bytes`."""
        return read_bundle_file(self.path(ref), self.max_bytes)


def read_bundle_file(path: Path, max_bytes: int = MAX_BUNDLE_BYTES) -> bytes:
    """Read a bundle file, at most `max_bytes` of it.

    Prevents exhausting memory with a huge file before any check runs.
    """
    try:
        with path.open("rb") as handle:
            data = read_at_most(handle, max_bytes)
    except OSError as error:
        raise BundleReadError(f"cannot read: {error.strerror}") from None
    if len(data) > max_bytes:
        raise BundleTooLarge(f"the file is larger than {max_bytes} bytes")
    return data
