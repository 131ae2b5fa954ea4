"""Consumers: unique names and tokens, and grants that name something."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from fnmatch import fnmatchcase

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ConsumerManifest
from aivault_ops.resolve.model import ResolvedConsumer


def grant_matches(pattern: str, capability: str) -> bool:
    """A consumer grant is a glob over capability names (`openai/*`)."""
    return fnmatchcase(capability, pattern)


def resolve_consumers(
    manifests: Sequence[ConsumerManifest], capabilities: Collection[str], report: Report
) -> dict[str, ResolvedConsumer]:
    """Consumers whose names and token hashes are unique; grants are checked too."""
    resolved: dict[str, ResolvedConsumer] = {}
    tokens: dict[str, str] = {}
    for manifest in manifests:
        source = manifest.source
        if manifest.name in resolved:
            report.add(
                source.at("metadata", "name"),
                "E-DUPLICATE-NAME",
                f"Consumer '{manifest.name}' is defined more than once",
            )
            continue
        if manifest.token_sha256 in tokens:
            report.add(
                source.at("spec", "tokenSha256"),
                "E-CONSUMER-TOKEN-REUSED",
                f"consumer '{tokens[manifest.token_sha256]}' has the same token; give every"
                " consumer its own token",
            )
            continue
        tokens[manifest.token_sha256] = manifest.name
        _check_grants(manifest, capabilities, report)
        resolved[manifest.name] = ResolvedConsumer(
            manifest.name, manifest.token_sha256, manifest.capabilities
        )
    return resolved


def _check_grants(
    manifest: ConsumerManifest, capabilities: Collection[str], report: Report
) -> None:
    for index, pattern in enumerate(manifest.capabilities):
        if not any(grant_matches(pattern, name) for name in capabilities):
            report.add(
                manifest.source.at("spec", "capabilities", index),
                "E-CONSUMER-GRANT",
                f"grant '{pattern}' matches no capability of this project"
                " (see `aivault-ops capabilities list`)",
            )
