"""A credential ready for the request path: injection, header rules, redactor.

Built once per policy load. A credential whose auth cannot be built (an
unsupported strategy, a missing or too-short secret, a template error)
stays in the policy as unavailable: requests through it are refused with
its status and code, and the rest of the bundle keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote

from aivault_ops.policy_document import PolicyCredential
from aivault_ops.runtime.auth.base import (
    AuthServices,
    AuthUnavailable,
    Injection,
    secret_invalid,
)
from aivault_ops.runtime.auth.strategies import build_injection, is_supported
from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.headers import HeaderPolicy
from aivault_ops.runtime.policy.checks.path import PATH_SAFE
from aivault_ops.runtime.policy.checks.query import QueryPolicy
from aivault_ops.runtime.policy.shared_values import ValueTable
from aivault_ops.runtime.response.headers import ResponseHeaderFilter
from aivault_ops.runtime.response.redaction import SecretRedactor
from aivault_ops.secret import Secret


@dataclass(frozen=True)
class CredentialRuntime:
    """One credential's precomputed request-path state (`path_prefix` is a `Secret`
    when the path strategy injects one)."""

    name: str
    hosts: tuple[str, ...]
    injection: Injection | None
    unavailable: AuthUnavailable | None
    path_prefix: str | Secret
    header_policy: HeaderPolicy
    query_policy: QueryPolicy
    redactor: SecretRedactor
    header_filter: ResponseHeaderFilter

    def require(self) -> Injection:
        """The injection, or the `Refusal` that makes this credential fail closed."""
        if self.injection is None:
            problem = self.unavailable or AuthUnavailable("credential is unavailable")
            raise Refusal(problem.status, problem.code, f"credential {self.name!r} is unavailable")
        return self.injection


def needed(spec: PolicyCredential) -> bool:
    """Whether this credential's secrets must be decrypted (its strategy is supported)."""
    return is_supported(spec.auth)


def _upstream_prefix(spec: PolicyCredential) -> str:
    """The schema-checked prefix ('' or starting with '/'), percent-encoded (escapes kept)."""
    return quote(spec.upstream_path_prefix.rstrip("/"), safe=PATH_SAFE + "%")


def _placeholders(
    spec: PolicyCredential, secrets: Mapping[tuple[str, str], Secret]
) -> dict[str, Secret]:
    values: dict[str, Secret] = {}
    for placeholder, where in spec.secrets.items():
        secret = secrets.get((where.file, where.name))
        if secret is None:
            raise AuthUnavailable(f"secret {where.name!r} from {where.file} was not loaded")
        values[placeholder] = secret
    return values


def _owned(injection: Injection, table: ValueTable) -> Injection:
    """The injection with the header and parameter names as table copies (they come
    from the policy JSON, see `shared_values`; the values are new `Secret`s)."""

    def pairs(items: tuple[tuple[str, Secret], ...]) -> tuple[tuple[str, Secret], ...]:
        return tuple((table.text(name), value) for name, value in items)

    return replace(injection, headers=pairs(injection.headers), query=pairs(injection.query))


def _path_prefix(injected: str | Secret, upstream_prefix: str, table: ValueTable) -> str | Secret:
    """The injected prefix (a `Secret`, or "") followed by the credential's own."""
    if isinstance(injected, Secret):
        return injected + upstream_prefix
    return table.text(injected + upstream_prefix)


def _unavailable(name: str, hosts: tuple[str, ...], problem: AuthUnavailable) -> CredentialRuntime:
    return CredentialRuntime(
        name, hosts, None, problem, "", HeaderPolicy(), QueryPolicy(),
        SecretRedactor.empty(), ResponseHeaderFilter.default(),
    )  # fmt: skip


def build_credential(
    name: str,
    spec: PolicyCredential,
    hosts: tuple[str, ...],
    secrets: Mapping[tuple[str, str], Secret],
    services: AuthServices | None = None,
    table: ValueTable | None = None,
) -> CredentialRuntime:
    """Precompute one credential; auth problems make it unavailable, not the policy.

    Header rules and filters are shared between credentials that inject the
    same header names (through `table`, one per policy build).
    """
    table = table or ValueTable()
    upstream_prefix = _upstream_prefix(spec)
    try:
        placeholders = _placeholders(spec, secrets) if needed(spec) else {}
        injection = build_injection(
            name,
            spec.provider,
            spec.auth,
            placeholders,
            hosts=hosts,
            services=services,
        )
    except AuthUnavailable as problem:
        return _unavailable(name, hosts, problem)
    except UnicodeDecodeError:  # a binary secret where text is needed: this credential only
        return _unavailable(name, hosts, secret_invalid("a secret is not UTF-8 text"))
    injection = _owned(injection, table)
    header_names = table.share(injection.header_names())
    query_names = table.share(injection.query_names())
    return CredentialRuntime(
        name=name,
        hosts=hosts,
        injection=injection,
        unavailable=None,
        path_prefix=_path_prefix(injection.path_prefix, upstream_prefix, table),
        header_policy=table.get(
            ("header policy", header_names, query_names),
            lambda: HeaderPolicy(header_names | query_names),
        ),
        query_policy=table.get(
            ("query policy", header_names, query_names),
            lambda: QueryPolicy(query_names, header_names),
        ),
        redactor=SecretRedactor(injection.secret_values),
        header_filter=table.get(
            ("response filter", header_names), lambda: ResponseHeaderFilter(header_names)
        ),
    )
