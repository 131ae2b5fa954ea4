"""Helpers to build valid bundles and to forge broken ones, byte by byte."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from aivault_ops.bundle import SigningKey, VerifiedBundle, build_bundle, verify_bundle
from aivault_ops.bundle.archive import pack_entries
from aivault_ops.bundle.signatures import encode_signatures, sign_manifest
from aivault_ops.canonical_json import canonical_json

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
POLICY = canonical_json({"consumers": {}, "credentials": {"openai": {"provider": "openai"}}})
SECRETS = {
    "secrets/openai.sops.yaml": b"OPENAI_API_KEY: ENC[AES256_GCM,data:xyz]\nsops: {}\n",
    "secrets/stripe.sops.json": b'{"STRIPE_KEY": "ENC[...]", "sops": {}}\n',
}


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Any:
    """A tar member to feed `tar_gz`: (header, data)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    info.linkname = link
    return info, data


def tar_gz(members: list[Any]) -> bytes:
    """A gzip'd tar holding exactly `members`, in order, duplicates and all."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.size else None)
    return raw.getvalue()


def entries_of(bundle: bytes) -> dict[str, bytes]:
    """The regular files of a (trusted, test-built) bundle."""
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as archive:
        result = {}
        for info in archive.getmembers():
            handle = archive.extractfile(info)
            assert handle is not None
            result[info.name] = handle.read()
        return result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Forge:
    """Builds a valid bundle, or its parts, signed by `key`; carries the test data."""

    key: SigningKey

    NOW = NOW
    POLICY = POLICY
    SECRETS = SECRETS
    member = staticmethod(member)
    tar_gz = staticmethod(tar_gz)
    entries_of = staticmethod(entries_of)
    sha = staticmethod(sha)

    def valid(self, **overrides: Any) -> bytes:
        arguments: dict[str, Any] = {
            "policy_json": POLICY,
            "secret_files": SECRETS,
            "serial": 7,
            "revision": "0123abc",
            "environment": "prod",
            "expires_at": None,
            "signing_key": self.key,
        }
        return build_bundle(**{**arguments, **overrides})

    def manifest(self, payload: Mapping[str, bytes] | None = None, **fields: Any) -> dict[str, Any]:
        """A manifest dict listing `payload` (default: POLICY and SECRETS), with `fields` set."""
        payload = {"policy.json": POLICY, **SECRETS} if payload is None else payload
        base = {
            "format": "aivault-ops/bundle@1",
            "serial": 7,
            "revision": "0123abc",
            "environment": "prod",
            "files": {path: sha(data) for path, data in payload.items()},
        }
        return {**base, **fields}

    def signed(
        self, manifest: dict[str, Any] | bytes, payload: Mapping[str, bytes] | None = None
    ) -> dict[str, bytes]:
        """Entries with `manifest` (dict or raw bytes) signed by `key`."""
        raw = manifest if isinstance(manifest, bytes) else canonical_json(manifest)
        files = {"policy.json": POLICY, **SECRETS} if payload is None else payload
        signatures = encode_signatures([sign_manifest(raw, self.key)])
        return {**files, "manifest.json": raw, "signatures.json": signatures}

    @staticmethod
    def pack(entries: Mapping[str, bytes]) -> bytes:
        return pack_entries(entries)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def forge(signing_key: SigningKey) -> Forge:
    return Forge(signing_key)


@pytest.fixture
def verify(signing_key: SigningKey) -> Callable[..., VerifiedBundle]:
    """`verify_bundle` trusting `signing_key`, at `NOW`."""

    def run(data: bytes, **options: Any) -> VerifiedBundle:
        return verify_bundle(data, trusted_keys=[signing_key.public_key], now=NOW, **options)

    return run
