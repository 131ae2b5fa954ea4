"""The whole `policy.json` document, and its schema check.

The runtime leaves one part to the auth strategies: a credential's `auth`
(see `check_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aivault_ops import schema_check
from aivault_ops.errors import AivaultError
from aivault_ops.policy_document.sections import (
    PolicyCapability,
    PolicyConsumer,
    PolicyCredential,
    PolicyProvider,
    PolicySecretFile,
    read_only,
)

POLICY_FORMAT = "aivault-ops/policy@1"


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """The whole of `policy.json` (its `format` is always `POLICY_FORMAT`)."""

    project: str
    environment: str | None
    providers: Mapping[str, PolicyProvider]
    credentials: Mapping[str, PolicyCredential]
    capabilities: Mapping[str, PolicyCapability]
    consumers: Mapping[str, PolicyConsumer]
    secret_files: Mapping[str, PolicySecretFile]  # bundle path -> file

    def __post_init__(self) -> None:
        for section in ("providers", "credentials", "capabilities", "consumers", "secret_files"):
            object.__setattr__(self, section, read_only(getattr(self, section)))

    def to_json(self) -> dict[str, Any]:
        """The document as JSON data (serialize it with `canonical_json`)."""
        return {
            "format": POLICY_FORMAT,
            "project": self.project,
            "environment": self.environment,
            "providers": {name: spec.to_json() for name, spec in self.providers.items()},
            "credentials": {name: spec.to_json() for name, spec in self.credentials.items()},
            "capabilities": {name: spec.to_json() for name, spec in self.capabilities.items()},
            "consumers": {name: spec.to_json() for name, spec in self.consumers.items()},
            "secretFiles": {path: spec.to_json() for path, spec in self.secret_files.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> PolicyDocument:
        """Check `data` against `schemas/policy.schema.json`, then type it.

        Raises `AivaultError` naming the first violation (by its path in the
        document; string values are never echoed).
        """
        checked = check_policy(data)
        return cls(
            project=checked["project"],
            environment=checked["environment"],
            providers={n: PolicyProvider.from_json(s) for n, s in checked["providers"].items()},
            credentials={
                n: PolicyCredential.from_json(s) for n, s in checked["credentials"].items()
            },
            capabilities={
                n: PolicyCapability.from_json(s) for n, s in checked["capabilities"].items()
            },
            consumers={n: PolicyConsumer.from_json(s) for n, s in checked["consumers"].items()},
            secret_files={
                p: PolicySecretFile.from_json(s) for p, s in checked["secretFiles"].items()
            },
        )


def schema_problem(data: object) -> str | None:
    """The first violation of `schemas/policy.schema.json` as one line, or None."""
    errors = schema_check.check("policy", data)
    if not errors:
        return None
    more = len(errors) - 1
    return errors[0].message + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def check_policy(data: object) -> Mapping[str, Any]:
    """`data` itself once it is a valid `policy.json` document; `AivaultError` otherwise.

    Every part is checked against the schema except each credential's `auth`:
    the auth strategy reads that itself when the policy is built, so a strategy
    this version does not know makes only its credential unavailable
    (`E-AUTH-UNSUPPORTED`), not the whole bundle unreadable.
    """
    if not isinstance(data, Mapping):
        raise AivaultError("policy.json must hold a JSON object")
    if data.get("format") != POLICY_FORMAT:
        raise AivaultError(
            f"policy.json: format must be {POLICY_FORMAT!r}",
            hint="compile the bundle with an aivault-ops version that writes this format",
        )
    problem = schema_problem(_auth_left_to_strategies(data))
    if problem is not None:
        raise AivaultError(f"policy.json: {problem}")
    return data


def _auth_left_to_strategies(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """`data` with each credential's `auth` replaced by one the schema accepts."""
    credentials = data.get("credentials")
    if not isinstance(credentials, Mapping):
        return data
    return {
        **data,
        "credentials": {
            name: {**spec, "auth": "basic"}
            if isinstance(spec, Mapping) and "auth" in spec
            else spec
            for name, spec in credentials.items()
        },
    }
