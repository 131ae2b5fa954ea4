"""Providers as typed data: the built-in registry and custom Provider manifests.

A provider is hosts + an auth strategy + canonical secret names + (for the
registry) its capabilities and credential alternatives. Registry JSON and
Provider manifests both become `ProviderSpec`, so the compiler treats them
alike apart from the pinning rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

REGISTRY_DIR = Path(__file__).resolve().parent / "registry"

AuthSpec = Any  # the registry's JSON spelling: a one-key mapping or "basic" / "mtls"


@dataclass(frozen=True)
class AuthVariant:
    """How a credential of the provider authenticates: the default or an alternative."""

    id: str | None
    auth: AuthSpec
    hosts: tuple[str, ...]
    vault_secrets: Mapping[str, str]  # canonical secret name -> template placeholder
    capabilities: tuple[str, ...] | None = None  # alternatives serve only these
    upstream_path_prefix: str = ""


@dataclass(frozen=True)
class CapabilitySpec:
    """A registry capability: methods, path prefixes and hosts of one provider."""

    name: str
    provider: str
    methods: tuple[str, ...]
    path_prefixes: tuple[str, ...]
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, from the registry (`source="registry"`) or a manifest (`"custom"`)."""

    name: str
    source: str
    default: AuthVariant
    alternatives: tuple[AuthVariant, ...] = ()
    capabilities: tuple[CapabilitySpec, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host of the provider, alternatives included."""
        hosts = list(self.default.hosts)
        for variant in self.alternatives:
            hosts.extend(h for h in variant.hosts if h not in hosts)
        return tuple(hosts)

    def variant(self, alternative: str | None) -> AuthVariant | None:
        """The default auth (`None`) or the alternative with that id."""
        if alternative is None:
            return self.default
        return next((v for v in self.alternatives if v.id == alternative), None)


def _frozen_map(data: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(data or {}))


def provider_from_registry_json(data: Mapping[str, Any]) -> ProviderSpec:
    """Build a `ProviderSpec` from one schema-valid registry file."""
    name = data["provider"]
    alternatives = tuple(
        AuthVariant(
            id=alt["id"],
            auth=alt["auth"],
            hosts=tuple(alt["hosts"]),
            vault_secrets=_frozen_map(alt["vaultSecrets"]),
            capabilities=tuple(alt.get("capabilities", ())),
            upstream_path_prefix=alt.get("upstreamPathPrefix", ""),
        )
        for alt in sorted(
            data.get("credentialAlternatives", ()), key=lambda a: -a.get("priority", 0)
        )
    )
    capabilities = tuple(
        CapabilitySpec(
            name=cap["id"],
            provider=name,
            methods=tuple(sorted(cap["allow"]["methods"])),
            path_prefixes=tuple(cap["allow"]["pathPrefixes"]),
            hosts=tuple(cap["allow"]["hosts"]),
        )
        for cap in data["capabilities"]
    )
    default = AuthVariant(
        None, data["auth"], tuple(data["hosts"]), _frozen_map(data.get("vaultSecrets"))
    )
    return ProviderSpec(name, "registry", default, alternatives, capabilities)


@dataclass(frozen=True)
class Registry:
    """The built-in providers, and which provider owns each canonical secret name."""

    providers: Mapping[str, ProviderSpec]
    secret_owners: Mapping[str, str]

    @classmethod
    def from_providers(cls, providers: list[ProviderSpec]) -> Registry:
        owners: dict[str, str] = {}
        for provider in providers:
            for variant in (provider.default, *provider.alternatives):
                for secret_name in variant.vault_secrets:
                    owners.setdefault(secret_name, provider.name)
        by_name = {p.name: p for p in sorted(providers, key=lambda p: p.name)}
        return cls(MappingProxyType(by_name), MappingProxyType(owners))


def registry_files(directory: Path = REGISTRY_DIR) -> list[Path]:
    """The registry's provider files, sorted."""
    return sorted(directory.glob("*.json"))


@cache
def builtin_registry() -> Registry:
    """The registry shipped inside the package (validated by the test suite)."""
    providers = [
        provider_from_registry_json(json.loads(path.read_text(encoding="utf-8")))
        for path in registry_files()
    ]
    return Registry.from_providers(providers)
