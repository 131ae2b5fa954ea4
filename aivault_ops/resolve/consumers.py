"""Consumers: unique names and tokens, and grants that name something."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ConsumerManifest
from aivault_ops.resolve.model import ResolvedConsumer
from aivault_ops.suggest import did_you_mean

_GLOB_CHARS = re.compile(r"[*?\[]")


def grant_matches(pattern: str, capability: str) -> bool:
    """A consumer grant is a glob over capability names (`openai/*`)."""
    return fnmatchcase(capability, pattern)


def _matches_any(pattern: str, sorted_names: Sequence[str]) -> bool:
    """Glob match against sorted names, looking only where the literal prefix allows."""
    prefix = _GLOB_CHARS.split(pattern, maxsplit=1)[0]
    start = bisect_left(sorted_names, prefix)
    for name in sorted_names[start:]:
        if not name.startswith(prefix):
            return False
        if grant_matches(pattern, name):
            return True
    return False


@dataclass(frozen=True)
class Unresolved:
    """What failed earlier (already reported): grants that could match it are not blamed."""

    capabilities: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()

    def explains(self, pattern: str) -> bool:
        """True when `pattern` could match a capability lost to an earlier error."""
        if any(grant_matches(pattern, name) for name in self.capabilities):
            return True
        prefix = _GLOB_CHARS.split(pattern, maxsplit=1)[0]
        return any(prefix.startswith(f"{p}/") or f"{p}/".startswith(prefix) for p in self.providers)


def resolve_consumers(
    manifests: Sequence[ConsumerManifest],
    capabilities: Collection[str],
    report: Report,
    unresolved: Unresolved = Unresolved(),
) -> dict[str, ResolvedConsumer]:
    """Consumers whose names and token hashes are unique; grants are checked too."""
    names = sorted(capabilities)
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
        _check_grants(manifest, names, report, unresolved)
        resolved[manifest.name] = ResolvedConsumer(
            manifest.name, manifest.token_sha256, manifest.capabilities
        )
    return resolved


def _check_grants(
    manifest: ConsumerManifest, sorted_names: Sequence[str], report: Report, unresolved: Unresolved
) -> None:
    for index, pattern in enumerate(manifest.capabilities):
        if not _matches_any(pattern, sorted_names) and not unresolved.explains(pattern):
            report.add(
                manifest.source.at("spec", "capabilities", index),
                "E-CONSUMER-GRANT",
                f"grant '{pattern}' matches no capability of this project"
                + (did_you_mean(pattern, sorted_names) or " (see `aivault-ops capabilities list`)"),
            )
