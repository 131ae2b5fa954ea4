"""`basic`: HTTP Basic authentication from one or two secrets.

Where username and password come from, in this order:

1. variables `username` and `password` (two placeholders, as for Twilio's
   account SID and auth token, or the fields of a JSON secret
   `{"username": …, "password": …}`);
2. the `secret` (else `password`) variable as `user:pass`, split at the
   first colon;
3. the `password` variable alone, with the provider's documented fixed
   username (`mailgun` → `api`, Mailgun's documented Basic username);
4. otherwise the credential is unavailable (E-CREDENTIAL-UNAVAILABLE).

The password and the whole `user:pass` text are redacted from responses
(raw and base64, so an echoed Authorization header is caught). The username
is redacted on its own only when it came from a secret and is at least 8
characters long; it is usually an account identifier, not a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from aivault_ops.runtime.auth.base import (
    MIN_SECRET_LENGTH,
    AuthContext,
    AuthUnavailable,
    Injection,
    check_injected_value,
    check_redactable,
)
from aivault_ops.secret import Secret

PROVIDER_USERNAMES: Mapping[str, str] = {"mailgun": "api"}


def _pair(context: AuthContext) -> tuple[str, str, bool]:
    """(username, password, whether the username came from a secret), as plain text
    for as long as `build` needs it."""
    variables = {name: secret.reveal_text() for name, secret in context.variables.items()}
    if "username" in variables and "password" in variables:
        return variables["username"], variables["password"], True
    combined = variables.get("secret", variables.get("password"))
    if combined is not None and ":" in combined and not combined.lstrip().startswith("{"):
        username, password = combined.split(":", 1)
        return username, password, True
    if "password" in variables and context.provider in PROVIDER_USERNAMES:
        return PROVIDER_USERNAMES[context.provider], variables["password"], False
    raise AuthUnavailable(
        "basic auth needs variables 'username' and 'password', a 'user:pass' secret,"
        " or a JSON secret with username and password fields"
    )


def build(context: AuthContext) -> Injection:
    """Inject `Authorization: Basic base64(username:password)`."""
    if context.config != "basic" and context.config not in ({}, None):
        raise AuthUnavailable("auth.basic takes no options")
    username, password, secret_username = _pair(context)
    if ":" in username or not username:
        raise AuthUnavailable("basic auth username is empty or contains ':'")
    combined = f"{username}:{password}"
    value = check_injected_value(
        "Basic " + base64.b64encode(combined.encode()).decode(), "basic auth"
    )
    secrets = [
        *check_redactable({"password": Secret(password)}, frozenset({"password"})),
        Secret(combined),
    ]
    if secret_username and len(username) >= MIN_SECRET_LENGTH:
        secrets.append(Secret(username))
    return Injection(headers=(("Authorization", Secret(value)),), secret_values=tuple(secrets))
