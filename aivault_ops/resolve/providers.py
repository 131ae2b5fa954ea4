"""Custom providers next to the registry: reserved names and pinned secret names."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ProviderManifest
from aivault_ops.providers import AuthVariant, ProviderSpec, Registry
from aivault_ops.resolve.auth_config import check_auth_config
from aivault_ops.resolve.public_hosts import check_public_hosts, check_token_endpoint_host
from aivault_ops.resolve.templates import check_auth_templates


def resolve_providers(
    manifests: Sequence[ProviderManifest], registry: Registry, report: Report
) -> tuple[dict[str, ProviderSpec], frozenset[str]]:
    """Registry providers plus every acceptable custom provider, and the names refused."""
    providers = dict(registry.providers)
    seen: set[str] = set()
    refused: set[str] = set()
    for manifest in manifests:
        if _acceptable(manifest, registry, seen, report):
            providers[manifest.name] = _to_spec(manifest)
        elif manifest.name not in registry.providers:
            refused.add(manifest.name)
        seen.add(manifest.name)
    return providers, frozenset(refused - set(providers))


def _acceptable(
    manifest: ProviderManifest, registry: Registry, seen: set[str], report: Report
) -> bool:
    source, ok = manifest.source, True
    if manifest.name in registry.providers:
        report.add(
            source.at("metadata", "name"),
            "E-PROVIDER-RESERVED",
            f"'{manifest.name}' is a built-in registry provider; choose another name"
            f" or use provider: {manifest.name} in a Credential without a Provider manifest",
        )
        ok = False
    elif manifest.name in seen:
        report.add(
            source.at("metadata", "name"),
            "E-DUPLICATE-NAME",
            f"Provider '{manifest.name}' is defined more than once",
        )
        ok = False
    for secret_name in manifest.spec.get("vaultSecrets", {}):
        owner = registry.secret_owners.get(secret_name)
        if owner is not None:
            report.add(
                source.at_key("spec", "vaultSecrets", secret_name),
                "E-SECRET-PINNED",
                f"secret name {secret_name} is pinned to registry provider '{owner}';"
                " a custom provider may not claim it",
            )
            ok = False
    ok = check_public_hosts(manifest.spec["hosts"], source, ("spec", "hosts"), report) and ok
    ok = check_token_endpoint_host(manifest.spec["auth"], source, ("spec", "auth"), report) and ok
    ok = check_auth_config(manifest.spec["auth"], source, ("spec", "auth"), report) and ok
    return check_auth_templates(manifest.spec["auth"], source, ("spec", "auth"), report) and ok


def _to_spec(manifest: ProviderManifest) -> ProviderSpec:
    spec = manifest.spec
    variant = AuthVariant(
        id=None,
        auth=spec["auth"],
        hosts=tuple(spec["hosts"]),
        vault_secrets=MappingProxyType(dict(spec.get("vaultSecrets", {}))),
    )
    return ProviderSpec(manifest.name, "custom", variant)
