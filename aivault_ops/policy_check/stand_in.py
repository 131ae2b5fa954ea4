"""The runtime's `ActivePolicy`, built from a compiled policy without any secret.

Decisions never depend on a secret's value: they depend on the consumer's
grants, the capability's rules and the *names* a credential injects
(caller headers and query parameters with those names are refused). So the
policy is built by the runtime's own `ActivePolicy.build`, every auth
strategy included, with one stand-in value per secret: a JSON object that
carries each field a strategy reads (AWS keys, OAuth2 client fields,
`username`/`password`, the fields its templates name) and, for `mtls`, a
throwaway certificate made here. No stand-in ever leaves the process: the
decision reports names only.

What this cannot know: whether the real secret is well formed (too short,
not JSON, a key that does not match its certificate). The runtime refuses
such a credential with 503 E-CREDENTIAL-UNAVAILABLE; `check` assumes the
secrets load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from aivault_ops.policy_document import PolicyCredential, PolicyDocument
from aivault_ops.runtime.auth.base import AuthServices, FormValues
from aivault_ops.runtime.auth.strategies import strategy_of
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.secret import Secret

STAND_IN = "aivault-check-stand-in-value"
_FIELDS = (
    "access_key_id",
    "secret_access_key",
    "client_id",
    "client_secret",
    "refresh_token",
    "username",
    "password",
)
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def _no_token_endpoint(url: str, form: FormValues, headers: FormValues) -> tuple[int, Any]:
    raise RuntimeError("check never contacts a token endpoint")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def template_names(auth: Any) -> set[str]:
    """Every identifier inside `{{ … }}` in the credential's auth config."""
    return {
        name
        for text in _strings(auth)
        for inside in _TEMPLATE.findall(text)
        for name in _NAME.findall(inside)
    }


@cache
def _client_pair() -> tuple[str, str]:
    """A throwaway self-signed certificate and its key (PEM), for `mtls` stand-ins."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aivault-check")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def stand_in_fields(spec: PolicyCredential) -> dict[str, str]:
    """The fields a stand-in needs for this credential's strategy and templates."""
    fields = dict.fromkeys((*_FIELDS, *sorted(template_names(spec.auth))), STAND_IN)
    if strategy_of(spec.auth)[0] == "mtls":
        fields["certificate"], fields["private_key"] = _client_pair()
    return fields


def stand_in_secrets(document: PolicyDocument) -> dict[tuple[str, str], Secret]:
    """A stand-in for every secret the runtime would decrypt for this policy (a secret
    shared by several credentials carries the fields of each)."""
    needed = ActivePolicy.needed_secrets(document)
    fields: dict[tuple[str, str], dict[str, str]] = {}
    for _, spec in sorted(document.credentials.items()):
        for where in spec.secrets.values():
            if (where.file, where.name) in needed:
                fields.setdefault((where.file, where.name), {}).update(stand_in_fields(spec))
    return {where: Secret(json.dumps(v, sort_keys=True)) for where, v in sorted(fields.items())}


def decision_policy(document: PolicyDocument, *, serial: int = 0) -> ActivePolicy:
    """The runtime's `ActivePolicy` for `document`, built without the age identity."""
    manifest = {"serial": serial, "revision": "check", "environment": document.environment}
    services = AuthServices(post_form=_no_token_endpoint)
    return ActivePolicy.build(
        manifest=manifest,
        policy=document,
        keyid="check",
        secrets=stand_in_secrets(document),
        services=services,
    )
