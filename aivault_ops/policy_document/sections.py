"""The sections of `policy.json`, one frozen dataclass each (see `policy_document`).

Each reads a schema-checked value (`from_json`; `PolicyDocument.from_json`
runs the check) and writes it back unchanged (`to_json`). A credential's
`auth` and any capability policy field not typed here stay JSON values,
read-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias

JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
_NO_FIELDS: Mapping[str, JsonValue] = MappingProxyType({})


def read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of `mapping` (itself when it already is one)."""
    return mapping if isinstance(mapping, MappingProxyType) else MappingProxyType(dict(mapping))


def _json_copy(value: Any) -> Any:
    """A copy of a JSON value sharing no container with it (its strings are immutable)."""
    if isinstance(value, Mapping):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(item) for item in value]
    return value


def _integer(value: Any) -> int:
    """A schema-checked integer as an int (JSON Schema counts `5000.0` as one too)."""
    return value if type(value) is int else int(value)


@dataclass(frozen=True, slots=True)
class PolicyProvider:
    """`providers.<name>`: where the provider came from and its hosts."""

    source: str  # "registry" | "custom"
    hosts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "hosts": list(self.hosts)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyProvider:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(data["source"], tuple(data["hosts"]))


@dataclass(frozen=True, slots=True)
class SecretLocation:
    """Where a placeholder's value lives: the SOPS file's bundle path and its key."""

    file: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SecretLocation:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(data["file"], data["name"])


@dataclass(frozen=True, slots=True)
class PolicyCredential:
    """`credentials.<name>`: the concrete hosts, the auth strategy and its secrets."""

    provider: str
    hosts: tuple[str, ...]
    auth: JsonValue  # the registry's spelling: "basic" or {"header": {...}}
    secrets: Mapping[str, SecretLocation]  # placeholder -> location
    upstream_path_prefix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth", _json_copy(self.auth))
        object.__setattr__(self, "secrets", read_only(self.secrets))

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "hosts": list(self.hosts),
            "auth": _json_copy(self.auth),
            "secrets": {key: where.to_json() for key, where in self.secrets.items()},
            "upstreamPathPrefix": self.upstream_path_prefix,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyCredential:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(
            provider=data["provider"],
            hosts=tuple(data["hosts"]),
            auth=data["auth"],
            secrets={key: SecretLocation.from_json(w) for key, w in data["secrets"].items()},
            upstream_path_prefix=data["upstreamPathPrefix"],
        )


_LIMITS = (
    ("rateLimitPerMinute", "rate_limit_per_minute"),
    ("maxConcurrent", "max_concurrent"),
    ("maxRequestBodyBytes", "max_request_body_bytes"),
    ("maxResponseBodyBytes", "max_response_body_bytes"),
    ("timeoutMs", "timeout_ms"),
)
_TYPED_RULES = frozenset({key for key, _ in _LIMITS} | {"responseBlocklist"})


@dataclass(frozen=True, slots=True)
class CapabilityPolicy:
    """`capabilities.<name>.policy`: limits and response rules; None: not set."""

    rate_limit_per_minute: int | None = None
    max_request_body_bytes: int | None = None
    max_response_body_bytes: int | None = None
    timeout_ms: int | None = None
    max_concurrent: int | None = None
    response_blocklist: tuple[str, ...] | None = None
    other: Mapping[str, JsonValue] = field(default_factory=dict)  # schema-valid, not typed above

    def __post_init__(self) -> None:
        if self.other is not _NO_FIELDS:
            other = MappingProxyType(_json_copy(self.other)) if self.other else _NO_FIELDS
            object.__setattr__(self, "other", other)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _json_copy(self.other) if self.other else {}
        for key, attribute in _LIMITS:
            if (value := getattr(self, attribute)) is not None:
                data[key] = value
        if self.response_blocklist is not None:
            data["responseBlocklist"] = list(self.response_blocklist)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CapabilityPolicy:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        if not data:
            return _NO_RULES
        limits = {attribute: _integer(data[key]) for key, attribute in _LIMITS if key in data}
        blocklist = data.get("responseBlocklist")
        return cls(
            **limits,
            response_blocklist=None if blocklist is None else tuple(blocklist),
            other=_NO_FIELDS
            if _TYPED_RULES.issuperset(data)
            else {key: value for key, value in data.items() if key not in _TYPED_RULES},
        )


_NO_RULES = CapabilityPolicy()


@dataclass(frozen=True, slots=True)
class PolicyCapability:
    """`capabilities.<name>`: who injects, and the methods, paths and hosts allowed."""

    credential: str
    provider: str
    source: str  # "manifest" | "registry"
    methods: tuple[str, ...]
    path_prefixes: tuple[str, ...]
    hosts: tuple[str, ...]
    policy: CapabilityPolicy = _NO_RULES
    operations: tuple[str, ...] = ()  # allowed X-Amz-Target values (written only when set)
    copy_source_prefixes: tuple[str, ...] = ()  # allowed copy/rename sources (likewise)

    def to_json(self) -> dict[str, Any]:
        data = {
            "credential": self.credential,
            "provider": self.provider,
            "source": self.source,
            "methods": list(self.methods),
            "pathPrefixes": list(self.path_prefixes),
            "hosts": list(self.hosts),
            "policy": self.policy.to_json(),
        }
        if self.operations:
            data["operations"] = list(self.operations)
        if self.copy_source_prefixes:
            data["copySourcePrefixes"] = list(self.copy_source_prefixes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyCapability:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(
            data["credential"],
            data["provider"],
            data["source"],
            tuple(data["methods"]),
            tuple(data["pathPrefixes"]),
            tuple(data["hosts"]),
            CapabilityPolicy.from_json(data["policy"]),
            tuple(data.get("operations", ())),
            tuple(data.get("copySourcePrefixes", ())),
        )


@dataclass(frozen=True, slots=True)
class PolicyConsumer:
    """`consumers.<name>`: the sha256 of its token and the capability globs it holds."""

    token_sha256: str
    capabilities: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tokenSha256": self.token_sha256, "capabilities": list(self.capabilities)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyConsumer:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(data["tokenSha256"], tuple(data["capabilities"]))


@dataclass(frozen=True, slots=True)
class PolicySecretFile:
    """`secretFiles.<bundle path>`: digest, SOPS store format and the names used."""

    sha256: str
    format: str  # "yaml" | "json" | "dotenv" | "binary"
    names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "format": self.format, "names": list(self.names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicySecretFile:
        """From a schema-checked value (see `PolicyDocument.from_json`)."""
        return cls(data["sha256"], data["format"], tuple(data["names"]))
