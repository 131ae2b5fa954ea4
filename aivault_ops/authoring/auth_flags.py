"""`--auth STRATEGY` and its flags → the `auth` value of a Provider or Credential manifest.

Flags are named as aivault names them; the result has the shape of
`registry-provider.schema.json#/$defs/auth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from aivault_ops.errors import UsageError

STRATEGIES = (
    "header",
    "query",
    "path",
    "multi_header",
    "multi_query",
    "o_auth2",
    "aws_sig_v4",
    "hmac",
    "basic",
    "mtls",
)


@dataclass(frozen=True)
class AuthFlags:
    """The strategy flags as given (None / empty: not given)."""

    header_name: str | None = None
    value_template: str | None = None
    query_param: str | None = None
    path_prefix_template: str | None = None
    auth_header: Sequence[str] = field(default_factory=tuple)
    auth_query: Sequence[str] = field(default_factory=tuple)
    grant_type: str | None = None
    token_endpoint: str | None = None
    scope: Sequence[str] = field(default_factory=tuple)
    aws_service: str | None = None
    aws_region: str | None = None
    hmac_algorithm: str | None = None
    hmac_message: str | None = None


# Which flags each strategy takes; every other flag given is a usage error.
_TAKES: dict[str, tuple[str, ...]] = {
    "header": ("header_name", "value_template"),
    "query": ("query_param",),
    "path": ("path_prefix_template",),
    "multi_header": ("auth_header",),
    "multi_query": ("auth_query",),
    "o_auth2": ("grant_type", "token_endpoint", "scope"),
    "aws_sig_v4": ("aws_service", "aws_region"),
    "hmac": ("hmac_algorithm", "header_name", "value_template", "hmac_message"),
    "basic": (),
    "mtls": (),
}
_OPTIONAL = {"scope", "hmac_message"}
HMAC_ALGORITHMS = ("sha256", "sha512")
HMAC_MESSAGES = ("request", "canonical", "body")
# What a new hmac provider or credential signs unless told: the whole request (a
# manifest without `message` keeps meaning `body`, see the hmac strategy).
NEW_HMAC_MESSAGE = "request"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def auth_from_flags(strategy: str, flags: AuthFlags) -> dict[str, object] | str:
    """The `auth` value for `strategy`; a usage error names a missing or foreign flag."""
    if strategy not in _TAKES:
        raise UsageError(f"--auth {strategy}: use one of {', '.join(STRATEGIES)}")
    takes = _TAKES[strategy]
    given = {f.name for f in fields(flags) if getattr(flags, f.name) not in (None, (), [])}
    foreign = sorted(given - set(takes))
    if foreign:
        raise UsageError(
            f"--auth {strategy} does not take {', '.join(_flag(name) for name in foreign)}"
        )
    missing = [name for name in takes if name not in given and name not in _OPTIONAL]
    if missing:
        raise UsageError(f"--auth {strategy} needs {', '.join(_flag(name) for name in missing)}")
    return _build(strategy, flags)


def _build(strategy: str, flags: AuthFlags) -> dict[str, object] | str:
    if strategy in ("basic", "mtls"):
        return strategy
    if strategy == "header":
        return {
            "header": {"header_name": flags.header_name, "value_template": flags.value_template}
        }
    if strategy == "query":
        return {"query": {"param_name": flags.query_param}}
    if strategy == "path":
        return {"path": {"prefix_template": flags.path_prefix_template}}
    if strategy == "multi_header":
        pairs = _pairs("--auth-header", flags.auth_header)
        return {"multi_header": [{"header_name": n, "value_template": t} for n, t in pairs]}
    if strategy == "multi_query":
        pairs = _pairs("--auth-query", flags.auth_query)
        return {"multi_query": [{"param_name": n, "value_template": t} for n, t in pairs]}
    if strategy == "o_auth2":
        oauth: dict[str, object] = {
            "grant_type": flags.grant_type,
            "token_endpoint": flags.token_endpoint,
        }
        if flags.scope:
            oauth["scopes"] = list(flags.scope)
        return {"o_auth2": oauth}
    if strategy == "aws_sig_v4":
        return {"aws_sig_v4": {"service": flags.aws_service, "region": flags.aws_region}}
    if flags.hmac_algorithm not in HMAC_ALGORITHMS:
        raise UsageError(
            f"--hmac-algorithm {flags.hmac_algorithm}: use {' or '.join(HMAC_ALGORITHMS)}"
        )
    message = flags.hmac_message or NEW_HMAC_MESSAGE
    if message not in HMAC_MESSAGES:
        raise UsageError(f"--hmac-message {message}: use one of {', '.join(HMAC_MESSAGES)}")
    return {
        "hmac": {
            "algorithm": flags.hmac_algorithm,
            "header_name": flags.header_name,
            "value_template": flags.value_template,
            "message": message,
        }
    }


def _pairs(flag: str, values: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, template = value.partition("=")
        if not sep or not name or not template:
            raise UsageError(f"{flag} {value!r}: use NAME=TEMPLATE, e.g. x-api-key={{{{secret}}}}")
        pairs.append((name, template))
    return pairs
