"""The compiler: a resolved policy → the `policy.json` document (pure data).

No I/O and no secret values: secret files appear by bundle path, sha256 and
the names the policy uses. The output is validated against
`schemas/policy.schema.json` before it is returned, so a bundle can never
carry a policy the runtime would reject.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aivault_ops import schema_check
from aivault_ops.errors import AivaultError
from aivault_ops.resolve.model import (
    ResolvedCapability,
    ResolvedConsumer,
    ResolvedCredential,
    ResolvedPolicy,
    SecretFile,
)

POLICY_FORMAT = "aivault-ops/policy@1"


def compile_policy(policy: ResolvedPolicy) -> dict[str, Any]:
    """policy.json as a dict (serialize it with `canonical_json`)."""
    bundle_paths = {path: file.bundle_path for path, file in policy.secret_files.items()}
    document = {
        "format": POLICY_FORMAT,
        "project": policy.project,
        "environment": policy.environment,
        "providers": {
            name: {"source": spec.source, "hosts": list(spec.hosts)}
            for name, spec in policy.providers.items()
        },
        "credentials": {
            name: _credential(credential, bundle_paths)
            for name, credential in policy.credentials.items()
        },
        "capabilities": {
            name: _capability(capability) for name, capability in policy.capabilities.items()
        },
        "consumers": {name: _consumer(consumer) for name, consumer in policy.consumers.items()},
        "secretFiles": _secret_files(policy),
    }
    _check_schema(document)
    return document


def _credential(credential: ResolvedCredential, bundle_paths: dict[str, str]) -> dict[str, Any]:
    return {
        "provider": credential.provider,
        "hosts": list(credential.hosts),
        "auth": credential.auth,
        "secrets": {
            placeholder: {"file": bundle_paths[ref.file], "name": ref.name}
            for placeholder, ref in sorted(credential.secrets.items())
        },
        "upstreamPathPrefix": credential.upstream_path_prefix,
    }


def _capability(capability: ResolvedCapability) -> dict[str, Any]:
    return {
        "credential": capability.credential,
        "provider": capability.provider,
        "source": capability.source,
        "methods": sorted(capability.methods),
        "pathPrefixes": list(capability.path_prefixes),
        "hosts": list(capability.hosts),
        "policy": dict(capability.policy),
    }


def _consumer(consumer: ResolvedConsumer) -> dict[str, Any]:
    return {"tokenSha256": consumer.token_sha256, "capabilities": list(consumer.capabilities)}


def _secret_files(policy: ResolvedPolicy) -> dict[str, Any]:
    used: dict[str, set[str]] = defaultdict(set)
    for credential in policy.credentials.values():
        for ref in credential.secrets.values():
            used[ref.file].add(ref.name)
    return {
        file.bundle_path: _secret_file(file, used[path])
        for path, file in policy.secret_files.items()
    }


def _secret_file(file: SecretFile, names: set[str]) -> dict[str, Any]:
    return {"sha256": file.sha256, "format": file.format, "names": sorted(names)}


def _check_schema(document: dict[str, Any]) -> None:
    errors = schema_check.check("policy", document)
    if errors:
        first = errors[0]
        raise AivaultError(
            f"internal error: compiled policy violates policy.schema.json: {first.message}",
            hint="please report this with the manifests that produced it",
        )
