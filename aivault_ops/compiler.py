"""The compiler: a resolved policy → the typed `policy.json` document (pure data).

No I/O and no secret values: secret files appear by bundle path, sha256 and
the names the policy uses. The document is checked against
`schemas/policy.schema.json` before it is returned, so a bundle can never
carry a policy the runtime would reject.
"""

from __future__ import annotations

from collections import defaultdict

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import (
    CapabilityPolicy,
    PolicyCapability,
    PolicyConsumer,
    PolicyCredential,
    PolicyDocument,
    PolicyProvider,
    PolicySecretFile,
    SecretLocation,
    schema_problem,
)
from aivault_ops.resolve.model import (
    ResolvedCapability,
    ResolvedConsumer,
    ResolvedCredential,
    ResolvedPolicy,
    SecretFile,
)


def compile_policy(policy: ResolvedPolicy) -> PolicyDocument:
    """policy.json as the typed document (write `canonical_json(document.to_json())`)."""
    bundle_paths = {path: file.bundle_path for path, file in policy.secret_files.items()}
    document = PolicyDocument(
        project=policy.project,
        environment=policy.environment,
        providers={
            name: PolicyProvider(spec.source, tuple(spec.hosts))
            for name, spec in policy.providers.items()
        },
        credentials={
            name: _credential(credential, bundle_paths)
            for name, credential in policy.credentials.items()
        },
        capabilities={
            name: _capability(capability) for name, capability in policy.capabilities.items()
        },
        consumers={name: _consumer(consumer) for name, consumer in policy.consumers.items()},
        secret_files=_secret_files(policy),
    )
    _check_schema(document)
    return document


def _credential(credential: ResolvedCredential, bundle_paths: dict[str, str]) -> PolicyCredential:
    return PolicyCredential(
        provider=credential.provider,
        hosts=tuple(credential.hosts),
        auth=credential.auth,
        secrets={
            placeholder: SecretLocation(bundle_paths[ref.file], ref.name)
            for placeholder, ref in sorted(credential.secrets.items())
        },
        upstream_path_prefix=credential.upstream_path_prefix,
    )


def _capability(capability: ResolvedCapability) -> PolicyCapability:
    return PolicyCapability(
        credential=capability.credential,
        provider=capability.provider,
        source=capability.source,
        methods=tuple(sorted(capability.methods)),
        path_prefixes=tuple(capability.path_prefixes),
        hosts=tuple(capability.hosts),
        policy=CapabilityPolicy.from_json(capability.policy),
        operations=tuple(sorted(capability.operations)),
        copy_source_prefixes=tuple(capability.copy_source_prefixes),
    )


def _consumer(consumer: ResolvedConsumer) -> PolicyConsumer:
    return PolicyConsumer(consumer.token_sha256, tuple(consumer.capabilities))


def _secret_files(policy: ResolvedPolicy) -> dict[str, PolicySecretFile]:
    used: dict[str, set[str]] = defaultdict(set)
    for credential in policy.credentials.values():
        for ref in credential.secrets.values():
            used[ref.file].add(ref.name)
    return {
        file.bundle_path: _secret_file(file, used[path])
        for path, file in policy.secret_files.items()
    }


def _secret_file(file: SecretFile, names: set[str]) -> PolicySecretFile:
    return PolicySecretFile(file.sha256, file.format, tuple(sorted(names)))


def _check_schema(document: PolicyDocument) -> None:
    problem = schema_problem(document.to_json())
    if problem is not None:
        raise AivaultError(
            f"internal error: compiled policy violates policy.schema.json: {problem}",
            hint="please report this with the manifests that produced it",
        )
