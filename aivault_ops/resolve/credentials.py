"""Credentials: provider, auth variant, concrete hosts and where each secret lives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import CredentialManifest, LocationOf, SecretRef
from aivault_ops.providers import AuthSpec, AuthVariant, ProviderSpec, Registry
from aivault_ops.resolve.auth_config import (
    SECRET_PLACEHOLDER,
    check_auth_config,
    check_secret_bound,
    check_secret_fields,
)
from aivault_ops.resolve.hosts import covered, is_wildcard
from aivault_ops.resolve.model import ResolvedCredential, SecretFile
from aivault_ops.resolve.public_hosts import check_token_endpoint_host
from aivault_ops.resolve.secret_index import SecretIndex, normalize_ref_path
from aivault_ops.resolve.templates import check_auth_templates, template_variables
from aivault_ops.suggest import did_you_mean

DEFAULT_PLACEHOLDER = "secret"


@dataclass(frozen=True)
class CredentialContext:
    providers: Mapping[str, ProviderSpec]
    registry: Registry
    secrets: SecretIndex
    report: Report
    invalid_providers: frozenset[str] = frozenset()


def resolve_credentials(
    manifests: Sequence[CredentialManifest], context: CredentialContext
) -> dict[str, tuple[ResolvedCredential, AuthVariant]]:
    """Every credential whose references all resolve, with the auth variant it uses."""
    resolved: dict[str, tuple[ResolvedCredential, AuthVariant]] = {}
    seen: set[str] = set()
    for manifest in manifests:
        if manifest.name in seen:
            context.report.add(
                manifest.source.at("metadata", "name"),
                "E-DUPLICATE-NAME",
                f"Credential '{manifest.name}' is defined more than once",
            )
            continue
        seen.add(manifest.name)
        result = _resolve_one(manifest, context)
        if result is not None:
            resolved[manifest.name] = result
    return resolved


def _resolve_one(
    manifest: CredentialManifest, context: CredentialContext
) -> tuple[ResolvedCredential, AuthVariant] | None:
    provider = context.providers.get(manifest.provider)
    if provider is None and manifest.provider in context.invalid_providers:
        return None  # the Provider manifest's own errors are the root cause, already reported
    if provider is None:
        context.report.add(
            manifest.source.at("spec", "provider"),
            "E-PROVIDER-UNKNOWN",
            f"provider '{manifest.provider}' is neither a registry provider nor defined by"
            " a Provider manifest" + _nearest_or_list(manifest.provider, context.providers),
        )
        return None
    variant = _variant(manifest, provider, context.report)
    if variant is None:
        return None
    auth = _auth(manifest, provider, variant, context.report)
    hosts = _hosts(manifest, variant, context.report)
    secrets = _secrets(manifest, provider, variant, context)
    if auth is None or hosts is None or secrets is None:
        return None
    where = "secretRefs" if None not in manifest.secret_refs else "secretRef"
    bound_at = manifest.source.place("spec", where if manifest.secret_refs else "provider")
    if not check_secret_bound(auth, secrets, bound_at, context.report):
        return None
    if not _secret_fields_ok(auth, secrets, bound_at, context):
        return None
    if provider.source == "custom" and not _placeholders_bound(manifest, auth, secrets, context):
        return None
    credential = ResolvedCredential(
        manifest.name,
        provider.name,
        hosts,
        auth,
        MappingProxyType(secrets),
        variant.upstream_path_prefix,
    )
    return credential, variant


def _secret_fields_ok(
    auth: AuthSpec,
    secrets: Mapping[str, SecretRef],
    location: LocationOf,
    context: CredentialContext,
) -> bool:
    ref = secrets.get(SECRET_PLACEHOLDER)
    file = context.secrets.files.get(ref.file) if ref is not None else None
    if ref is None or file is None:
        return True
    fields = file.fields.get(ref.name)
    return check_secret_fields(auth, ref.name, fields, location, context.report)


def _nearest_or_list(name: str, known: Iterable[str]) -> str:
    return did_you_mean(name, known) or " (see `aivault-ops capabilities list --registry`)"


def _placeholders_bound(
    manifest: CredentialManifest,
    auth: AuthSpec,
    secrets: Mapping[str, SecretRef],
    context: CredentialContext,
) -> bool:
    """Every `{{name}}` a custom template reads must be bound to a secret.

    Otherwise each request would fail at run time on an undefined variable.
    (Registry templates may also read fields of a JSON secret, which only the
    runtime can see, so they are not checked here.)
    """
    unbound = sorted(template_variables(auth) - set(secrets))
    for name in unbound:
        where = "secretRefs" if None not in manifest.secret_refs else "secretRef"
        context.report.add(
            manifest.source.at("spec", where),
            "E-AUTH-TEMPLATE",
            f"the auth template uses {{{{{name}}}}}, which no secret binds"
            f" (bound: {', '.join(sorted(secrets))})",
        )
    return not unbound


def _variant(
    manifest: CredentialManifest, provider: ProviderSpec, report: Report
) -> AuthVariant | None:
    variant = provider.variant(manifest.alternative)
    if variant is None:
        known = ", ".join(v.id for v in provider.alternatives if v.id) or "none"
        report.add(
            manifest.source.at("spec", "alternative"),
            "E-ALTERNATIVE-UNKNOWN",
            f"provider '{provider.name}' has no credential alternative"
            f" '{manifest.alternative}'"
            + did_you_mean(str(manifest.alternative), (v.id for v in provider.alternatives if v.id))
            + f" (known: {known})",
        )
    return variant


def _auth(
    manifest: CredentialManifest, provider: ProviderSpec, variant: AuthVariant, report: Report
) -> AuthSpec | None:
    if manifest.auth is None:
        return variant.auth
    if provider.source == "registry":
        report.add(
            manifest.source.at("spec", "auth"),
            "E-AUTH-OVERRIDE",
            f"spec.auth may not override the auth of registry provider '{provider.name}'",
        )
        return None
    templates_ok = check_auth_templates(manifest.auth, manifest.source, ("spec", "auth"), report)
    endpoint_ok = check_token_endpoint_host(
        manifest.auth, manifest.source, ("spec", "auth"), report
    )
    config_ok = check_auth_config(manifest.auth, manifest.source, ("spec", "auth"), report)
    return manifest.auth if templates_ok and endpoint_ok and config_ok else None


def _hosts(
    manifest: CredentialManifest, variant: AuthVariant, report: Report
) -> tuple[str, ...] | None:
    if not manifest.hosts:
        if any(is_wildcard(h) for h in variant.hosts):
            report.add(
                manifest.source.at("spec"),
                "E-HOST-WILDCARD",
                f"the provider's hosts ({', '.join(variant.hosts)}) include a wildcard;"
                " name the concrete host(s) in spec.hosts",
            )
            return None
        return variant.hosts
    ok = True
    for index, host in enumerate(manifest.hosts):
        if not covered(host, variant.hosts):
            report.add(
                manifest.source.at("spec", "hosts", index),
                "E-HOST-OUTSIDE-PROVIDER",
                f"host '{host}' is not one of the provider's hosts ({', '.join(variant.hosts)})",
            )
            ok = False
    return manifest.hosts if ok else None


def _secrets(
    manifest: CredentialManifest,
    provider: ProviderSpec,
    variant: AuthVariant,
    context: CredentialContext,
) -> dict[str, SecretRef] | None:
    if manifest.secret_refs:
        return _explicit_secrets(manifest, provider, variant, context)
    if not variant.vault_secrets:
        context.report.add(
            manifest.source.at("spec"),
            "E-SECRET-MISSING",
            f"provider '{provider.name}' declares no vaultSecrets; set spec.secretRef"
            " (file#NAME) or spec.secretRefs",
        )
        return None
    return _discovered_secrets(manifest, variant, context)


def _explicit_secrets(
    manifest: CredentialManifest,
    provider: ProviderSpec,
    variant: AuthVariant,
    context: CredentialContext,
) -> dict[str, SecretRef] | None:
    placeholders = set(variant.vault_secrets.values())
    single = next(iter(placeholders)) if len(placeholders) == 1 else DEFAULT_PLACEHOLDER
    result: dict[str, SecretRef] = {}
    for placeholder, ref in manifest.secret_refs.items():
        where = (
            ("spec", "secretRef") if placeholder is None else ("spec", "secretRefs", placeholder)
        )
        checked = _check_ref(ref, provider, where, manifest, context)
        if checked is not None:
            result[placeholder or single] = checked
    return result if len(result) == len(manifest.secret_refs) else None


def _check_ref(
    ref: SecretRef,
    provider: ProviderSpec,
    where: tuple[str, ...],
    manifest: CredentialManifest,
    context: CredentialContext,
) -> SecretRef | None:
    location, report = manifest.source.place(*where), context.report
    relative = normalize_ref_path(ref.file)
    file = context.secrets.files.get(relative) if relative else None
    if relative is None or file is None:
        problem = "is outside the project" if relative is None else "is not a readable SOPS file"
        near = did_you_mean(ref.file, context.secrets.files) if relative else ""
        report.add(location(), "E-SECRET-NOT-FOUND", f"secret file '{ref.file}' {problem}{near}")
        return None
    if ref.name not in file.names:
        names = ", ".join(file.names) or "none"
        report.add(
            location(),
            "E-SECRET-NOT-FOUND",
            f"'{relative}' has no secret named {ref.name}{did_you_mean(ref.name, file.names)}"
            f" (it has: {names})",
        )
        return None
    if not _pinning_ok(ref.name, provider, location, context):
        return None
    if not _encrypted(ref.name, file, location, report):
        return None
    return SecretRef(relative, ref.name)


def _encrypted(name: str, file: SecretFile, location: LocationOf, report: Report) -> bool:
    """A value sops keeps in plaintext (`*_unencrypted`) is in git in clear: not a secret."""
    if name not in file.unencrypted_names:
        return True
    report.add(
        location(),
        "E-SOPS-PLAINTEXT",
        f"secret {name} is stored unencrypted in {file.path} ({file.unencrypted_rule});"
        " a credential's secret must be encrypted",
    )
    return False


def _pinning_ok(
    name: str, provider: ProviderSpec, location: LocationOf, context: CredentialContext
) -> bool:
    """Pinning: stops a registry provider's key (OPENAI_API_KEY) reaching another provider."""
    owner = context.registry.secret_owners.get(name)
    if owner is None or owner == provider.name:
        return True
    context.report.add(
        location(),
        "E-SECRET-PINNED",
        f"secret {name} is pinned to registry provider '{owner}'; only a credential with"
        f" provider: {owner} may use it",
    )
    return False


def _discovered_secrets(
    manifest: CredentialManifest, variant: AuthVariant, context: CredentialContext
) -> dict[str, SecretRef] | None:
    result: dict[str, SecretRef] = {}
    for name, placeholder in variant.vault_secrets.items():
        holders = context.secrets.holders(name)
        location = manifest.source.place("spec", "provider")
        if len(holders) == 1:
            if _encrypted(name, context.secrets.files[holders[0]], location, context.report):
                result[placeholder] = SecretRef(holders[0], name)
            continue
        if holders:
            code, message = (
                "E-SECRET-AMBIGUOUS",
                (
                    f"secret {name} is in several files ({', '.join(holders)}); pick one with"
                    f" spec.secretRef: <file>#{name}"
                ),
            )
        else:
            code, message = (
                "E-SECRET-NOT-FOUND",
                (
                    f"no SOPS file in the project holds {name}"
                    f"{did_you_mean(name, context.secrets.names())}; add it with"
                    f" `aivault-ops secrets set {name}` or set spec.secretRef"
                ),
            )
        context.report.add(location(), code, message)
    return result if len(result) == len(variant.vault_secrets) else None
