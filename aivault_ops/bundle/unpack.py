"""Read a bundle archive into memory without trusting it.

Nothing here is written to disk: the gzip stream is decompressed with a cap,
the tar is parsed from memory, and only regular files with allowed paths come
out. What comes out is still unverified; `verify.py` checks it.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass
from typing import Final

from aivault_ops.bundle.errors import (
    ArchiveError,
    BundleTooLarge,
    DuplicateEntry,
    MemberTypeError,
)
from aivault_ops.bundle.paths import check_entry_path

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_REGULAR: Final = (tarfile.REGTYPE, tarfile.AREGTYPE)


@dataclass(frozen=True)
class Limits:
    """Caps on what a bundle may expand to."""

    max_uncompressed_bytes: int = 64 * 1024 * 1024
    max_members: int = 4096


def read_entries(data: bytes, limits: Limits) -> dict[str, bytes]:
    """The archive's regular files by path; refuse anything unexpected."""
    tar_bytes = gunzip_capped(data, limits.max_uncompressed_bytes)
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as archive:
            return _collect(archive, limits)
    except tarfile.TarError as error:
        raise ArchiveError(f"not a valid tar archive inside the gzip stream: {error}") from None


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress one gzip member, refusing to produce more than `limit` bytes.

    Prevents gzip bombs: output is produced in bounded steps and the stream is
    abandoned as soon as it passes `limit`, so a small file cannot make the
    verifier allocate gigabytes. Truncated streams and trailing data after the
    gzip member are refused too (nothing unsigned can hide there).
    """
    if not data:
        raise ArchiveError("empty file")
    inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
    output = bytearray()
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, limit + 1 - len(output))
            output += chunk
            if len(output) > limit:
                raise BundleTooLarge(f"decompresses to more than {limit} bytes")
            if not chunk and not inflater.unconsumed_tail:
                raise ArchiveError("truncated: the gzip stream ends early")
            pending = inflater.unconsumed_tail
    except zlib.error as error:
        reason = str(error).rpartition(": ")[2]
        raise ArchiveError(f"not a gzip file, or corrupt ({reason})") from None
    if inflater.unused_data:
        raise ArchiveError("unexpected data after the end of the gzip stream")
    return bytes(output)


def _collect(archive: tarfile.TarFile, limits: Limits) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    for count, member in enumerate(archive, start=1):
        if count > limits.max_members:
            raise BundleTooLarge(f"more than {limits.max_members} entries")
        name = _check_member(member)
        if name in entries:
            raise DuplicateEntry(f"{name!r} appears more than once")
        entries[name] = _read_member(archive, member)
    if not entries:
        raise ArchiveError("the archive is empty")
    return entries


def _check_member(member: tarfile.TarInfo) -> str:
    """Refuse members that are not plain files, and unsafe names.

    Prevents link and device tricks: symlinks, hardlinks, devices, fifos,
    directories and sparse or vendor-specific members are refused outright,
    so an entry can never point at another file or at the host.
    """
    if member.type not in _REGULAR:
        kind = _KINDS.get(member.type, f"type {member.type!r}")
        raise MemberTypeError(f"{member.name!r} is a {kind}; only regular files are allowed")
    return check_entry_path(member.name)


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise MemberTypeError(f"{member.name!r} has no file content")
    with handle:
        return handle.read()


_KINDS: Final = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
    tarfile.DIRTYPE: "directory",
    tarfile.CONTTYPE: "contiguous file",
    tarfile.GNUTYPE_SPARSE: "sparse file",
}
