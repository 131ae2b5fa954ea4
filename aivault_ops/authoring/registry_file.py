"""A registry provider file (`registry/<provider>.json`) from a provider's parts.

Lists come out sorted and free of duplicates, capabilities sorted by id, so
the file passes `registry lint` by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SCHEMA_REF = "../schemas/registry-provider.schema.json"


@dataclass(frozen=True)
class CapabilityEntry:
    """One capability of the provider: its id and what it allows."""

    id: str
    methods: Sequence[str]
    path_prefixes: Sequence[str]
    hosts: Sequence[str]


def registry_provider(
    provider: str,
    *,
    auth: Mapping[str, object] | str,
    hosts: Sequence[str],
    vault_secrets: Mapping[str, str],
    capabilities: Sequence[CapabilityEntry],
) -> dict[str, object]:
    """The provider file's document (`vault_secrets`: secret name → template placeholder)."""
    return {
        "$schema": SCHEMA_REF,
        "provider": provider,
        "vaultSecrets": dict(sorted(vault_secrets.items())),
        "auth": auth,
        "hosts": _sorted(hosts),
        "capabilities": [
            {
                "id": entry.id,
                "provider": provider,
                "allow": {
                    "hosts": _sorted(entry.hosts),
                    "methods": _sorted(method.upper() for method in entry.methods),
                    "pathPrefixes": _sorted(entry.path_prefixes),
                },
            }
            for entry in sorted(capabilities, key=lambda entry: entry.id)
        ],
    }


def render(document: Mapping[str, object]) -> str:
    """The file's text: two-space indented JSON with a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _sorted(values: Iterable[str]) -> list[str]:
    return sorted(set(values))
