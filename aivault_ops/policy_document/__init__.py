"""`policy.json` as typed data: the one model the compiler writes and runtimes read.

The compiler builds a `PolicyDocument` from the resolved policy and writes
`canonical_json(document.to_json())`; a runtime turns a verified bundle's
policy back into one with `PolicyDocument.from_json`, which checks
`schemas/policy.schema.json` first. Past that check nothing handles raw
dicts: each section is a frozen dataclass (`sections`), and
`to_json(from_json(x)) == x` for every valid document (`document`).

Two parts stay JSON values, read-only: a credential's `auth` (each auth
strategy parses its own configuration) and any capability policy field
this model does not type (`CapabilityPolicy.other`), so every valid
document round-trips whole.
"""

from __future__ import annotations

from aivault_ops.policy_document.document import (
    POLICY_FORMAT,
    PolicyDocument,
    check_policy,
    schema_problem,
)
from aivault_ops.policy_document.sections import (
    CapabilityPolicy,
    JsonValue,
    PolicyCapability,
    PolicyConsumer,
    PolicyCredential,
    PolicyProvider,
    PolicySecretFile,
    SecretLocation,
)

__all__ = [
    "POLICY_FORMAT",
    "CapabilityPolicy",
    "JsonValue",
    "PolicyCapability",
    "PolicyConsumer",
    "PolicyCredential",
    "PolicyDocument",
    "PolicyProvider",
    "PolicySecretFile",
    "SecretLocation",
    "check_policy",
    "schema_problem",
]
