"""The one bundle verification function, shared by `verify` and the runtime.

There is no unsigned mode: `verify_bundle` always checks the signature, and
returns only bytes it has just checked, so nothing downstream reads
unverified data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from aivault_ops.bundle.errors import (
    BadSignature,
    BundleError,
    BundleExpired,
    DigestMismatch,
    MalformedJson,
    MissingEntry,
    PolicyRejected,
    UnlistedEntry,
    Unsigned,
    UntrustedSigner,
)
from aivault_ops.bundle.keys import PublicKey
from aivault_ops.bundle.manifest import BundleManifest, format_time, parse_manifest
from aivault_ops.bundle.paths import MANIFEST, POLICY, SIGNATURES
from aivault_ops.bundle.signatures import Signature, parse_signatures
from aivault_ops.bundle.unpack import Limits, read_entries
from aivault_ops.canonical_json import JsonError, loads_strict
from aivault_ops.errors import AivaultError

PolicyValidator = Callable[[Mapping[str, Any]], None]
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, digests, entries and expiry were all checked."""

    manifest: BundleManifest
    policy: Mapping[str, Any]
    policy_bytes: bytes
    files: Mapping[str, bytes]
    keyid: str


def verify_bundle(
    data: bytes,
    *,
    trusted_keys: Sequence[PublicKey],
    now: datetime,
    policy_validator: PolicyValidator | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedBundle:
    """Verify a bundle and return its checked content, or raise a `BundleError`.

    Order: safe unpack (size, member count, member types, paths, duplicates),
    signature over manifest.json by a trusted key, manifest format and schema,
    expiry, every digest and no unlisted or missing entry, policy.json as
    strict JSON, then `policy_validator` (which raises an `AivaultError`).
    """
    if now.tzinfo is None:
        raise ValueError("verify_bundle needs a timezone-aware `now`")
    entries = read_entries(data, limits)
    manifest_bytes = _required(entries, MANIFEST)
    keyid = check_signature(manifest_bytes, _required(entries, SIGNATURES, Unsigned), trusted_keys)
    manifest = parse_manifest(manifest_bytes)
    check_not_expired(manifest, now)
    check_digests(manifest, entries)
    policy_bytes = entries[POLICY]
    policy = _parse_policy(policy_bytes, policy_validator)
    secrets = {path: entries[path] for path in manifest.secret_paths}
    return VerifiedBundle(
        manifest=manifest,
        policy=policy,
        policy_bytes=policy_bytes,
        files=MappingProxyType(secrets),
        keyid=keyid,
    )


def _required(
    entries: Mapping[str, bytes], path: str, error: type[BundleError] = MissingEntry
) -> bytes:
    if path not in entries:
        raise error(f"the bundle has no {path}")
    return entries[path]


def check_signature(
    manifest_bytes: bytes, signatures_bytes: bytes, trusted_keys: Sequence[PublicKey]
) -> str:
    """Return the keyid of a trusted key with a valid signature over manifest.json.

    Prevents forged or altered bundles: manifest.json pins the digest of every
    other entry, so one valid signature by a trusted key covers the whole
    bundle. Signatures by unknown keys are ignored; with no trusted signer the
    bundle is refused (`E-BUNDLE-UNTRUSTED`), and a trusted keyid whose
    signature does not verify is refused (`E-BUNDLE-SIGNATURE`).
    """
    signatures = parse_signatures(signatures_bytes)
    by_keyid = {key.keyid: key for key in trusted_keys}
    candidates = [sig for sig in signatures if sig.keyid in by_keyid]
    if not candidates:
        raise UntrustedSigner(
            f"signed only by untrusted key(s) {_keyids(signatures)}",
            hint="pass the signer's public key with --trust, if you trust it",
        )
    for signature in candidates:
        if by_keyid[signature.keyid].verify(signature.sig, manifest_bytes):
            return signature.keyid
    raise BadSignature(
        f"the signature by key {_keyids(candidates)} does not match manifest.json"
        " (the bundle was altered or signed with another key)"
    )


def _keyids(signatures: Sequence[Signature]) -> str:
    return ", ".join(sorted({signature.keyid for signature in signatures}))


def check_not_expired(manifest: BundleManifest, now: datetime) -> None:
    """Refuse a bundle whose `expiresAt` is at or before `now`.

    Prevents replaying an old, once-valid bundle after its lifetime.
    """
    if manifest.expires_at is not None and manifest.expires_at <= now:
        raise BundleExpired(
            f"expired at {format_time(manifest.expires_at)} (now {format_time(now)})",
            hint="build and publish a new bundle",
        )


def check_digests(manifest: BundleManifest, entries: Mapping[str, bytes]) -> None:
    """Require exactly the listed entries, each with its listed sha256.

    Prevents tampering after signing: an added entry (`E-BUNDLE-UNLISTED`), a
    removed one (`E-BUNDLE-MISSING`) or a changed one (`E-BUNDLE-DIGEST`) is
    refused, so the signature covers every byte the bundle delivers.
    """
    for path in sorted(entries):
        if path not in (MANIFEST, SIGNATURES) and path not in manifest.files:
            raise UnlistedEntry(f"{path!r} is not listed in {MANIFEST}")
    for path, expected in manifest.files.items():
        if path not in entries:
            raise MissingEntry(f"{path!r} is listed in {MANIFEST} but not in the bundle")
        actual = hashlib.sha256(entries[path]).hexdigest()
        if not hmac.compare_digest(actual, expected):
            raise DigestMismatch(f"{path!r}: sha256 {actual} but {MANIFEST} says {expected}")


def _parse_policy(policy_bytes: bytes, validator: PolicyValidator | None) -> Mapping[str, Any]:
    try:
        policy = loads_strict(policy_bytes)
    except JsonError as error:
        raise MalformedJson(f"{POLICY}: {error}") from None
    if not isinstance(policy, dict):
        raise PolicyRejected(f"{POLICY} must hold a JSON object")
    if validator is not None:
        _run_validator(validator, policy)
    return policy


def _run_validator(validator: PolicyValidator, policy: Mapping[str, Any]) -> None:
    try:
        validator(policy)
    except BundleError:
        raise
    except AivaultError as error:
        raise PolicyRejected(f"{POLICY}: {error.message}", hint=error.hint) from None
