"""Build a signed bundle: a deterministic gzip'd tar.

Same inputs, same bytes: entries are sorted, every tar header carries mtime 0,
uid/gid 0, mode 0644 and no user or group names, the tar format is fixed
(PAX), the compression level is fixed, and the gzip header has mtime 0 and no
file name.

The level is zlib's default, 6: on the 2.2 MB policy of 10,000 capabilities
level 9 took 68 ms against 12 ms, for a bundle 18 KB smaller (85 KB, not 103 KB).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from aivault_ops.bundle.errors import EntryPathError
from aivault_ops.bundle.keys import SigningKey
from aivault_ops.bundle.manifest import BundleManifest
from aivault_ops.bundle.paths import MANIFEST, POLICY, SECRETS_DIR, SIGNATURES, check_entry_path
from aivault_ops.bundle.signatures import encode_signatures, sign_manifest

_COMPRESS_LEVEL: Final = 6


def build_bundle(
    *,
    policy_json: bytes,
    secret_files: Mapping[str, bytes],
    serial: int,
    revision: str,
    environment: str | None,
    expires_at: datetime | None,
    signing_key: SigningKey,
) -> bytes:
    """A signed bundle holding `policy_json` and `secret_files` (paths `secrets/…`).

    `policy_json` goes in as given (the compiler writes canonical JSON);
    secret files go in byte for byte. Raises `EntryPathError` for a bad path
    and `ManifestInvalid` for a bad serial, revision, environment or expiry.
    """
    payload = {POLICY: policy_json, **_secret_entries(secret_files)}
    manifest = BundleManifest(
        serial=serial,
        revision=revision,
        environment=environment,
        files={path: hashlib.sha256(data).hexdigest() for path, data in payload.items()},
        expires_at=expires_at,
    )
    manifest_bytes = manifest.to_bytes()
    signatures = encode_signatures([sign_manifest(manifest_bytes, signing_key)])
    return pack_entries({**payload, MANIFEST: manifest_bytes, SIGNATURES: signatures})


def _secret_entries(secret_files: Mapping[str, bytes]) -> dict[str, bytes]:
    for path in secret_files:
        if not path.startswith(SECRETS_DIR):
            raise EntryPathError(f"{path!r}: secret files go under {SECRETS_DIR}")
        check_entry_path(path)
    return dict(secret_files)


def pack_entries(entries: Mapping[str, bytes]) -> bytes:
    """A deterministic tar.gz of `entries` (path → bytes), sorted by path."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(entries):
            data = entries[path]
            archive.addfile(_header(path, len(data)), io.BytesIO(data))
    return _gzip(tar_buffer.getvalue())


def _header(path: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = size
    info.type = tarfile.REGTYPE
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _gzip(data: bytes) -> bytes:
    """gzip with a fixed header: no file name, mtime 0 (Python writes OS = 255)."""
    out = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=out, mtime=0, compresslevel=_COMPRESS_LEVEL
    ) as stream:
        stream.write(data)
    return out.getvalue()
