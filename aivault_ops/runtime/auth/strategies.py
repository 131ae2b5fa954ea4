"""Auth strategies, one module each, selected by the registry's JSON spelling.

`build_injection` turns a credential's `auth` and its decrypted secrets into
an `Injection` once per policy load, or raises `AuthUnavailable`. Strategies
not implemented here fail closed for their credential only.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from aivault_ops.runtime.auth import unsupported
from aivault_ops.runtime.auth.base import AuthContext, AuthServices, Injection
from aivault_ops.secret import Secret

Builder = Callable[[AuthContext], Injection]

STRATEGIES: Mapping[str, str] = {
    "header": "header",
    "query": "query",
    "path": "path",
    "basic": "basic",
    "multi_header": "multi_header",
    "multi_query": "multi_query",
    "hmac": "hmac_auth",
    "aws_sig_v4": "sigv4_auth",
    "o_auth2": "oauth2.strategy",
    "mtls": "mtls",
}
"""Strategy name → the module of `aivault_ops.runtime.auth` whose `build` implements it.

Modules are imported when a policy first uses their strategy, so a runtime
whose bundle uses only static headers never loads Jinja2 for `hmac` or the
o_auth2 and mTLS machinery.
"""


def builder_for(name: str) -> Builder:
    """The `build` function of strategy `name` (unknown: `unsupported.build`)."""
    module = STRATEGIES.get(name)
    if module is None:
        return unsupported.build
    return cast(Builder, importlib.import_module(f"{__package__}.{module}").build)


def strategy_of(auth: Any) -> tuple[str, Any]:
    """(strategy name, its config) from `"basic"` or `{"header": {...}}`."""
    if isinstance(auth, str):
        return auth, auth
    if isinstance(auth, Mapping) and len(auth) == 1:
        name, config = next(iter(auth.items()))
        return str(name), config
    return "", auth


def is_supported(auth: Any) -> bool:
    """Whether this runtime implements the strategy (so its secrets are needed)."""
    return strategy_of(auth)[0] in STRATEGIES


def secret_variables(placeholders: Mapping[str, Secret]) -> dict[str, Secret]:
    """Template variables: each placeholder's secret, plus the top-level string
    fields of any secret that is a JSON object (placeholders win on clashes),
    each a `Secret` of its own."""
    variables: dict[str, Secret] = {}
    for secret in placeholders.values():
        variables.update(_json_fields(secret))
    variables.update(placeholders)
    return variables


def _json_fields(secret: Secret) -> dict[str, Secret]:
    text = secret.reveal_text()
    if not text.lstrip().startswith("{"):
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {key: Secret(value) for key, value in parsed.items() if isinstance(value, str)}


def build_injection(
    credential: str,
    provider: str,
    auth: Any,
    placeholders: Mapping[str, Secret],
    *,
    hosts: tuple[str, ...] = (),
    services: AuthServices | None = None,
) -> Injection:
    """The precomputed injection for one credential, or `AuthUnavailable`."""
    name, config = strategy_of(auth)
    builder = builder_for(name)
    variables = secret_variables(placeholders)
    context = AuthContext(
        credential, provider, config, variables, hosts, services or AuthServices()
    )
    return builder(context)
