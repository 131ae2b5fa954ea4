"""manifest.json: what a bundle is, and the digest of every file in it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from aivault_ops import schema_check
from aivault_ops.bundle.errors import MalformedJson, ManifestInvalid, UnknownFormat
from aivault_ops.bundle.paths import MANIFEST, POLICY, SIGNATURES, check_entry_path
from aivault_ops.canonical_json import JsonError, canonical_json, loads_strict

FORMAT: Final = "aivault-ops/bundle@1"
MAX_SERIAL: Final = 2**63 - 1
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_REVISION = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with whole seconds (`2026-01-02T03:04:05Z`); needs an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("expiry time must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


@dataclass(frozen=True)
class BundleManifest:
    """The parsed, checked content of manifest.json."""

    serial: int
    revision: str
    environment: str | None
    files: Mapping[str, str]
    expires_at: datetime | None = None
    format: str = FORMAT

    def __post_init__(self) -> None:
        """Re-check every invariant, so no instance can describe an invalid bundle."""
        _require(self.format == FORMAT, f"format must be {FORMAT!r}")
        _require(type(self.serial) is int and 0 <= self.serial <= MAX_SERIAL, "bad serial")
        _require(
            isinstance(self.revision, str) and _fullmatch(_REVISION, self.revision), "bad revision"
        )
        env_ok = self.environment is None or _fullmatch(_ENVIRONMENT, self.environment)
        _require(env_ok, "bad environment name")
        if self.expires_at is not None:
            _require(self.expires_at.tzinfo is not None, "expiresAt must be timezone-aware")
            whole_seconds = self.expires_at.astimezone(UTC).replace(microsecond=0)
            object.__setattr__(self, "expires_at", whole_seconds)
        object.__setattr__(self, "files", MappingProxyType(dict(sorted(self.files.items()))))
        _check_files(self.files)

    @property
    def secret_paths(self) -> tuple[str, ...]:
        """The listed `secrets/…` entries, sorted."""
        return tuple(path for path in self.files if path != POLICY)

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON data (camelCase keys, as in the contract)."""
        data: dict[str, Any] = {
            "format": self.format,
            "serial": self.serial,
            "revision": self.revision,
            "environment": self.environment,
            "files": dict(self.files),
        }
        if self.expires_at is not None:
            data["expiresAt"] = format_time(self.expires_at)
        return data

    def to_bytes(self) -> bytes:
        """The exact manifest.json bytes that get signed (canonical JSON)."""
        return canonical_json(self.to_json())


def parse_manifest(data: bytes) -> BundleManifest:
    """Parse manifest.json: strict JSON, known format, schema, invariants."""
    try:
        obj = loads_strict(data)
    except JsonError as error:
        raise MalformedJson(f"{MANIFEST}: {error}") from None
    if isinstance(obj, dict) and "format" in obj and obj["format"] != FORMAT:
        raise UnknownFormat(
            f"{MANIFEST}: unknown bundle format {obj['format']!r} (this version reads {FORMAT!r})",
            hint="upgrade aivault-ops, or rebuild the bundle with this version",
        )
    problem = schema_check.schema_problem("bundle-manifest", obj)
    if problem is not None:
        raise ManifestInvalid(f"{MANIFEST}: {problem}")
    return BundleManifest(
        serial=obj["serial"],
        revision=obj["revision"],
        environment=obj["environment"],
        files=obj["files"],
        expires_at=_parse_time(obj.get("expiresAt")),
    )


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ManifestInvalid(f"{MANIFEST}: expiresAt: {text!r} is not a valid time") from None


def _check_files(files: Mapping[str, str]) -> None:
    _require(POLICY in files, f"files must list {POLICY}")
    for path, digest in files.items():
        _require(path not in (MANIFEST, SIGNATURES), f"files must not list {path}")
        check_entry_path(path)
        _require(isinstance(digest, str) and _fullmatch(_DIGEST, digest), f"bad digest for {path}")


def _fullmatch(pattern: re.Pattern[str], text: str) -> bool:
    return isinstance(text, str) and pattern.fullmatch(text) is not None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ManifestInvalid(f"{MANIFEST}: {message}")
