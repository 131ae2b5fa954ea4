"""Typed manifests: built once from schema-valid documents, immutable after.

Each manifest keeps a `ManifestSource` so every later check can point at the
exact line and column of the field it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from aivault_ops.diagnostics import Location
from aivault_ops.manifests.yaml_positions import Positions

LocationOf = Callable[[], Location]


@dataclass(frozen=True)
class ManifestSource:
    """Where a manifest came from: the project-relative file and node positions.

    The first `at` or `at_key` of a file parses it again for the positions, so
    code that may or may not report asks for a `place` and calls it only when
    it reports.
    """

    path: str
    positions: Positions

    def at(self, *path: str | int) -> Location:
        """Location of the value at `path` (or its nearest ancestor)."""
        return Location(self.path, *self.positions.of(tuple(path)))

    def place(self, *path: str | int) -> LocationOf:
        """`at(*path)`, deferred until called."""
        return partial(self.at, *path)

    def at_key(self, *path: str | int) -> Location:
        """Location of the key that introduces `path`."""
        return Location(self.path, *self.positions.of_key(tuple(path)))


@dataclass(frozen=True)
class SecretRef:
    """`file#NAME`: a top-level key of a SOPS file, file relative to the project."""

    file: str
    name: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        file, _, name = text.partition("#")
        return cls(file, name)

    def __str__(self) -> str:
        return f"{self.file}#{self.name}"


@dataclass(frozen=True)
class Project:
    name: str
    runtime_recipients: tuple[str, ...]
    trusted_signing_keys: tuple[str, ...]
    environments: Mapping[str, Mapping[str, Any]]
    source: ManifestSource
    registry_overrides: tuple[str, ...] = ()  # built-in providers the repo's registry/ replaces


@dataclass(frozen=True)
class ProviderManifest:
    name: str
    spec: Mapping[str, Any]
    source: ManifestSource


@dataclass(frozen=True)
class CredentialManifest:
    name: str
    provider: str
    secret_refs: Mapping[str | None, SecretRef]  # placeholder (None for `secretRef`) -> ref
    auth: Any | None
    hosts: tuple[str, ...]
    capabilities: tuple[str, ...] | None
    alternative: str | None
    source: ManifestSource


@dataclass(frozen=True)
class CapabilityManifest:
    name: str
    credential: str
    methods: tuple[str, ...]
    path_prefixes: tuple[str, ...]
    hosts: tuple[str, ...] | None
    policy: Mapping[str, Any]
    source: ManifestSource
    operations: tuple[str, ...] = ()  # allowed X-Amz-Target values
    copy_source_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsumerManifest:
    name: str
    token_sha256: str
    capabilities: tuple[str, ...]
    source: ManifestSource


Manifest = Project | ProviderManifest | CredentialManifest | CapabilityManifest | ConsumerManifest


def build_manifest(kind: str, data: Mapping[str, Any], source: ManifestSource) -> Manifest:
    """Turn one schema-valid document into its typed manifest."""
    name: str = data["metadata"]["name"]
    spec: Mapping[str, Any] = data["spec"]
    manifest: Manifest = _BUILDERS[kind](name, spec, source)
    return manifest


def _project(name: str, spec: Mapping[str, Any], source: ManifestSource) -> Project:
    environments = {
        env: MappingProxyType(dict(body.get("values", {})))
        for env, body in spec.get("environments", {}).items()
    }
    return Project(
        name,
        tuple(spec["runtimeRecipients"]),
        tuple(spec.get("trustedSigningKeys", ())),
        MappingProxyType(environments),
        source,
        tuple(spec.get("registryOverrides", ())),
    )


def _provider(name: str, spec: Mapping[str, Any], source: ManifestSource) -> ProviderManifest:
    return ProviderManifest(name, MappingProxyType(dict(spec)), source)


def _credential(name: str, spec: Mapping[str, Any], source: ManifestSource) -> CredentialManifest:
    refs: dict[str | None, SecretRef] = {}
    if "secretRef" in spec:
        refs[None] = SecretRef.parse(spec["secretRef"])
    for placeholder, ref in spec.get("secretRefs", {}).items():
        refs[placeholder] = SecretRef.parse(ref)
    capabilities = spec.get("capabilities")
    return CredentialManifest(
        name=name,
        provider=spec["provider"],
        secret_refs=MappingProxyType(refs),
        auth=spec.get("auth"),
        hosts=tuple(spec.get("hosts", ())),
        capabilities=tuple(capabilities) if capabilities is not None else None,
        alternative=spec.get("alternative"),
        source=source,
    )


def _capability(name: str, spec: Mapping[str, Any], source: ManifestSource) -> CapabilityManifest:
    allow = spec["allow"]
    hosts = allow.get("hosts")
    return CapabilityManifest(
        name=name,
        credential=spec["credential"],
        methods=tuple(sorted(allow["methods"])),
        path_prefixes=tuple(allow["pathPrefixes"]),
        hosts=tuple(hosts) if hosts is not None else None,
        policy=MappingProxyType(dict(spec.get("policy", {}))),
        source=source,
        operations=tuple(allow.get("operations", ())),
        copy_source_prefixes=tuple(allow.get("copySourcePrefixes", ())),
    )


def _consumer(name: str, spec: Mapping[str, Any], source: ManifestSource) -> ConsumerManifest:
    return ConsumerManifest(name, spec["tokenSha256"], tuple(spec["capabilities"]), source)


_BUILDERS: dict[str, Callable[[str, Mapping[str, Any], ManifestSource], Manifest]] = {
    "Project": _project,
    "Provider": _provider,
    "Credential": _credential,
    "Capability": _capability,
    "Consumer": _consumer,
}

KINDS: tuple[str, ...] = tuple(_BUILDERS)
