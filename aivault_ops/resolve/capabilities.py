"""Capabilities: written as manifests, or auto-provisioned from the registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import CapabilityManifest, CredentialManifest, LocationOf
from aivault_ops.providers import AuthVariant, CapabilitySpec, ProviderSpec
from aivault_ops.resolve.hosts import host_matches
from aivault_ops.resolve.model import ResolvedCapability, ResolvedCredential
from aivault_ops.suggest import did_you_mean

_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True)
class CapabilityContext:
    providers: Mapping[str, ProviderSpec]
    credentials: Mapping[str, tuple[ResolvedCredential, AuthVariant]]
    credential_manifests: Sequence[CredentialManifest]
    report: Report
    invalid_credentials: frozenset[str] = frozenset()

    def failed_earlier(self, credential: str) -> bool:
        """A credential that exists but did not resolve: its own errors are already reported."""
        declared = {manifest.name for manifest in self.credential_manifests}
        return credential in declared or credential in self.invalid_credentials


def resolve_capabilities(
    manifests: Sequence[CapabilityManifest], context: CapabilityContext
) -> dict[str, ResolvedCapability]:
    """Capability manifests first, then each registry credential's provisioned set."""
    resolved: dict[str, ResolvedCapability] = {}
    for manifest in manifests:
        capability = _from_manifest(manifest, context, resolved)
        if capability is not None:
            resolved[capability.name] = capability
    with_manifests = {m.credential for m in manifests}
    for credential_manifest in context.credential_manifests:
        _provision(credential_manifest, context, with_manifests, resolved)
    return resolved


def _from_manifest(
    manifest: CapabilityManifest,
    context: CapabilityContext,
    resolved: Mapping[str, ResolvedCapability],
) -> ResolvedCapability | None:
    report, source = context.report, manifest.source
    if manifest.name in resolved:
        report.add(
            source.at("metadata", "name"),
            "E-DUPLICATE-NAME",
            f"Capability '{manifest.name}' is defined more than once",
        )
        return None
    entry = context.credentials.get(manifest.credential)
    if entry is None and context.failed_earlier(manifest.credential):
        return None
    if entry is None:
        report.add(
            source.at("spec", "credential"),
            "E-CREDENTIAL-UNKNOWN",
            f"no valid Credential named '{manifest.credential}'"
            + did_you_mean(manifest.credential, context.credentials),
        )
        return None
    credential = entry[0]
    prefix = manifest.name.split("/", 1)[0]
    if prefix != credential.provider:
        report.add(
            source.at("metadata", "name"),
            "E-CAPABILITY-NAME",
            f"capability names are <provider>/<name>: '{manifest.name}' should start with"
            f" '{credential.provider}/' (the provider of credential '{credential.name}')",
        )
        return None
    hosts = _manifest_hosts(manifest, credential, report)
    if hosts is None:
        return None
    return ResolvedCapability(
        manifest.name,
        credential.name,
        credential.provider,
        "manifest",
        manifest.methods,
        manifest.path_prefixes,
        hosts,
        manifest.policy,
        manifest.operations,
        manifest.copy_source_prefixes,
    )


def _manifest_hosts(
    manifest: CapabilityManifest, credential: ResolvedCredential, report: Report
) -> tuple[str, ...] | None:
    """The one credential host the capability reaches (its `allow.hosts` patterns, or
    every credential host when absent, must match exactly one)."""
    patterns = manifest.hosts or credential.hosts
    outside = [
        i
        for i, pattern in enumerate(manifest.hosts or ())
        if not any(host_matches(pattern, host) for host in credential.hosts)
    ]
    for index in outside:
        report.add(
            manifest.source.at("spec", "allow", "hosts", index),
            "E-HOST-OUTSIDE-PROVIDER",
            f"host '{patterns[index]}' is not a host of credential '{credential.name}'"
            f" ({', '.join(credential.hosts)})",
        )
    if outside:
        return None
    matching = effective_hosts(patterns, credential.hosts)
    if len(matching) > 1:
        where = ("spec", "allow", "hosts") if manifest.hosts else ("metadata", "name")
        report.add(
            manifest.source.at(*where),
            "E-HOST-AMBIGUOUS",
            f"capability '{manifest.name}' would reach {len(matching)} hosts of credential"
            f" '{credential.name}' ({', '.join(matching)}); a capability has one upstream host:"
            " name it in spec.allow.hosts",
        )
        return None
    return matching


def effective_hosts(
    patterns: tuple[str, ...], credential_hosts: tuple[str, ...]
) -> tuple[str, ...]:
    """The credential's hosts that the capability's host patterns match, in credential order."""
    return tuple(h for h in credential_hosts if any(host_matches(p, h) for p in patterns))


def _provision(
    manifest: CredentialManifest,
    context: CapabilityContext,
    with_manifests: set[str],
    resolved: dict[str, ResolvedCapability],
) -> None:
    entry = context.credentials.get(manifest.name)
    if entry is None:
        return
    credential, variant = entry
    provider = context.providers[credential.provider]
    offered = _offered(provider, variant)
    if manifest.capabilities is not None:
        wanted = _narrowed(manifest, provider, offered, context.report)
    elif manifest.name in with_manifests:
        return
    else:
        wanted = [(spec, manifest.source.place("metadata", "name")) for spec in offered.values()]
    for spec, location in wanted:
        _add_provisioned(spec, credential, location, resolved, context.report)


def _offered(provider: ProviderSpec, variant: AuthVariant) -> dict[str, CapabilitySpec]:
    """The registry capabilities an auth variant may serve.

    An alternative serves only the capabilities it lists; the default auth
    serves every capability whose hosts it has (provisioning drops the rest).
    """
    in_hosts = [c for c in provider.capabilities if _overlaps(c.hosts, variant.hosts)]
    if variant.capabilities is not None:
        names = set(variant.capabilities)
        return {c.name: c for c in in_hosts if c.name in names}
    return {c.name: c for c in in_hosts}


def _overlaps(patterns: tuple[str, ...], hosts: tuple[str, ...]) -> bool:
    return any(p == h or host_matches(p, h) or host_matches(h, p) for p in patterns for h in hosts)


def _narrowed(
    manifest: CredentialManifest,
    provider: ProviderSpec,
    offered: Mapping[str, CapabilitySpec],
    report: Report,
) -> list[tuple[CapabilitySpec, LocationOf]]:
    chosen = []
    for index, name in enumerate(manifest.capabilities or ()):
        location = manifest.source.place("spec", "capabilities", index)
        if name in offered:
            chosen.append((offered[name], location))
        else:
            report.add(location(), "E-CAPABILITY-UNKNOWN", _not_offered(name, provider, offered))
    return chosen


def _not_offered(name: str, provider: ProviderSpec, offered: Mapping[str, CapabilitySpec]) -> str:
    for alternative in provider.alternatives:
        if name in (alternative.capabilities or ()):
            return (
                f"'{name}' is served only by credential alternative '{alternative.id}' of"
                f" provider '{provider.name}'; use a separate credential with"
                f" spec.alternative: {alternative.id}"
            )
    return (
        f"'{name}' is not a capability of this credential's provider"
        f"{did_you_mean(name, offered)} (available: {', '.join(sorted(offered))})"
    )


def _add_provisioned(
    spec: CapabilitySpec,
    credential: ResolvedCredential,
    location: LocationOf,
    resolved: dict[str, ResolvedCapability],
    report: Report,
) -> None:
    existing = resolved.get(spec.name)
    if existing is not None:
        if existing.source == "registry":
            report.add(
                location(),
                "E-DUPLICATE-NAME",
                f"capability '{spec.name}' is already provisioned by credential"
                f" '{existing.credential}'; narrow with spec.capabilities or write"
                " Capability manifests",
            )
        return  # a Capability manifest with the registry's name takes precedence
    hosts = effective_hosts(spec.hosts, credential.hosts)
    if len(hosts) > 1:
        report.add(
            location(),
            "E-HOST-AMBIGUOUS",
            f"registry capability '{spec.name}' would reach {len(hosts)} hosts of credential"
            f" '{credential.name}' ({', '.join(hosts)}); use one credential per host (tenant)"
            " or narrow spec.capabilities",
        )
    elif hosts:
        resolved[spec.name] = ResolvedCapability(
            spec.name,
            credential.name,
            credential.provider,
            "registry",
            spec.methods,
            spec.path_prefixes,
            hosts,
            _EMPTY,
        )
