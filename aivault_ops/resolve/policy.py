"""Resolve a loaded project into a `ResolvedPolicy` (or None when it has errors)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.loader import PROJECT_FILE, LoadedProject
from aivault_ops.providers import Registry
from aivault_ops.resolve.capabilities import CapabilityContext, resolve_capabilities
from aivault_ops.resolve.consumers import Unresolved, resolve_consumers
from aivault_ops.resolve.credentials import CredentialContext, resolve_credentials
from aivault_ops.resolve.model import ResolvedPolicy
from aivault_ops.resolve.providers import resolve_providers
from aivault_ops.resolve.secret_index import SecretIndex


def resolve(
    loaded: LoadedProject, registry: Registry, secrets: SecretIndex, report: Report
) -> ResolvedPolicy | None:
    """Check every cross-reference; return the policy only if the report stayed clean."""
    _check_project(loaded, report)
    providers, refused = resolve_providers(loaded.providers, registry, report)
    schema_invalid = {name for kind, name in loaded.invalid_names if kind == "Provider"}
    invalid_providers = refused | schema_invalid
    credentials = resolve_credentials(
        loaded.credentials,
        CredentialContext(providers, registry, secrets, report, invalid_providers),
    )
    capabilities = resolve_capabilities(
        loaded.capabilities,
        CapabilityContext(
            providers,
            credentials,
            loaded.credentials,
            report,
            frozenset(name for kind, name in loaded.invalid_names if kind == "Credential"),
        ),
    )
    consumers = resolve_consumers(
        loaded.consumers, capabilities, report, _unresolved(loaded, credentials, capabilities)
    )
    if not report.ok or loaded.project is None:
        return None
    used_files = {
        ref.file for credential, _ in credentials.values() for ref in credential.secrets.values()
    }
    used_providers = {credential.provider for credential, _ in credentials.values()}
    return ResolvedPolicy(
        project=loaded.project.name,
        environment=loaded.environment,
        providers=MappingProxyType({n: providers[n] for n in sorted(used_providers)}),
        credentials=MappingProxyType({n: c for n, (c, _) in sorted(credentials.items())}),
        capabilities=MappingProxyType(dict(sorted(capabilities.items()))),
        consumers=MappingProxyType(dict(sorted(consumers.items()))),
        secret_files=MappingProxyType({p: secrets.files[p] for p in sorted(used_files)}),
    )


def _unresolved(
    loaded: LoadedProject, credentials: Mapping[str, object], capabilities: Mapping[str, object]
) -> Unresolved:
    """Capabilities and providers lost to errors already reported (so not reported again)."""
    declared = {manifest.name for manifest in loaded.capabilities}
    declared |= {name for kind, name in loaded.invalid_names if kind == "Capability"}
    failed = {m.provider for m in loaded.credentials if m.name not in credentials}
    failed |= {name for kind, name in loaded.invalid_names if kind == "Provider"}
    return Unresolved(frozenset(declared - set(capabilities)), frozenset(failed))


def _check_project(loaded: LoadedProject, report: Report) -> None:
    if not loaded.projects:
        report.add(
            Location(PROJECT_FILE),
            "E-PROJECT-MISSING",
            "no Project manifest found; create aivault-ops.yaml with kind: Project"
            " (or run `aivault-ops init`)",
        )
    for extra in loaded.projects[1:]:
        report.add(
            extra.source.at("metadata", "name"),
            "E-PROJECT-DUPLICATE",
            "a policy repo has exactly one Project manifest",
        )
