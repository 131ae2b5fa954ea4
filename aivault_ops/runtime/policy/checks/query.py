"""Caller query parameters (and `;name=` path parameters) that would collide with credentials.

Names are compared by `names.name_key`, so `api_key[]`, `api_key%00`,
`"api_key "`, `api.key` and `API-KEY` all count as `api_key`; a name that
decodes to several pieces (`x%26api_key`) is checked piece by piece. Refused
(E-QUERY-FORBIDDEN, 403): every name the credential injects (query
parameter or header), the auth-class names in `names.AUTH_CLASS_QUERY`,
and method overrides (`_method`, `x-http-method-override` …). In the path,
a `;name=value` parameter, or a name after an encoded `?`, `#` or `&`,
with any of those names or a session id (`jsessionid`, `phpsessid` …) is
refused the same way. Refused (E-QUERY-INVALID, 400): a name or value
holding a lone surrogate (it cannot be encoded for the wire), and more or
longer parameters than `limits` allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote

from aivault_ops.runtime.model import Refusal, echo
from aivault_ops.runtime.policy.checks.limits import (
    MAX_QUERY_COUNT,
    MAX_QUERY_NAME_LENGTH,
    MAX_QUERY_TOTAL_LENGTH,
    MAX_QUERY_VALUE_LENGTH,
    over_limit,
)
from aivault_ops.runtime.policy.checks.names import (
    AUTH_CLASS_QUERY,
    METHOD_OVERRIDE_FIELDS,
    METHOD_OVERRIDE_QUERY,
    NameRules,
    pieces,
    plain_name,
)

SESSION_PATH_PARAMS: Final = ("jsessionid", "phpsessid", "aspsessionid", "sessionid", "sid")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_PARAMETER = re.compile(r"[;?&#]([^=/;?&#]*)")
_INJECTED, _AUTH, _METHOD, _SESSION = "injected", "auth", "method", "session"
_INVALID = "E-QUERY-INVALID"
_ACCEPTED_MAX = 4096
_Pairs = tuple[tuple[str, str], ...]


class QueryPolicy:
    """The query rules for one credential (built once per policy load)."""

    __slots__ = ("_accepted", "_path_rules", "_rules")

    def __init__(
        self, injected_query: Iterable[str] = (), injected_headers: Iterable[str] = ()
    ) -> None:
        groups = {
            _INJECTED: (*sorted(injected_query), *sorted(injected_headers)),
            _AUTH: AUTH_CLASS_QUERY,
            _METHOD: METHOD_OVERRIDE_QUERY,
        }
        self._rules = NameRules(groups)
        self._path_rules = NameRules({**groups, _SESSION: SESSION_PATH_PARAMS})
        # Names already accepted (bounded): judging a repeated name once took a
        # one-parameter check from 0.9 to 0.3 µs.
        self._accepted: set[str] = set()

    def check(self, query: _Pairs) -> _Pairs:
        """Refuse a caller query that could stand beside or replace an injected credential.

        Prevents a caller from supplying its own value for the credential's
        parameter (`?key=` for Gemini, also as `key[]`, `KEY`, `k%65y`), which
        upstreams may prefer over the injected one; a method override that
        would bypass the method allow-list (`?_method=DELETE`); and text that
        cannot be sent or is larger than the runtime accepts. Returns the
        query unchanged.
        """
        if len(query) > MAX_QUERY_COUNT:
            raise over_limit(_INVALID, "the number of query parameters", MAX_QUERY_COUNT)
        total = 0
        for name, value in query:
            total += len(name) + len(value)
            _check_text(name, value)
            if name not in self._accepted:
                self._check_name(name)
        if total > MAX_QUERY_TOTAL_LENGTH:
            raise over_limit(_INVALID, "the query", MAX_QUERY_TOTAL_LENGTH, "characters")
        return query

    def check_path(self, raw_path: str) -> None:
        """Refuse path parameters named like a credential or a session id.

        Prevents a caller from passing the injected parameter, or a session
        id (Java servlet containers read `;jsessionid=`), through the path
        instead of the query: as a `;name=value` matrix parameter, or after
        an encoded `?`, `#` or `&` (`/v1/users%3Fapi_key=…`) that a server
        decoding the path before splitting it would read as a query.
        """
        if ";" not in raw_path and "%" not in raw_path and "&" not in raw_path:
            return
        for match in _PATH_PARAMETER.finditer(unquote(raw_path, errors="surrogateescape")):
            found = self._path_rules.match(match[1])
            if found is not None:
                raise _forbidden(f"path parameter {echo(match[0])}", match[1], found)

    def _check_name(self, name: str) -> None:
        for piece in pieces(name):
            if plain_name(piece) in METHOD_OVERRIDE_FIELDS:
                raise _forbidden(f"query parameter {echo(name)}", piece, (piece, _METHOD))
            found = self._rules.match(piece)
            if found is not None:
                raise _forbidden(f"query parameter {echo(name)}", piece, found)
        if len(self._accepted) < _ACCEPTED_MAX:
            self._accepted.add(name)


def _check_text(name: str, value: str) -> None:
    if len(name) > MAX_QUERY_NAME_LENGTH:
        raise over_limit(
            _INVALID, f"query parameter name {echo(name)}", MAX_QUERY_NAME_LENGTH, "characters"
        )
    if len(value) > MAX_QUERY_VALUE_LENGTH:
        raise over_limit(
            _INVALID, f"the value of query parameter {echo(name)}", MAX_QUERY_VALUE_LENGTH,
            "characters",
        )  # fmt: skip
    if not (name.isascii() and value.isascii()) and _SURROGATE.search(name + value):
        raise Refusal(
            400,
            _INVALID,
            f"query parameter {echo(name)} holds a lone surrogate, which cannot be sent",
        )


def _forbidden(what: str, name: str, found: tuple[str, str]) -> Refusal:
    shown, reason = found
    if reason == _METHOD:
        why = "is a method override; it could make the upstream apply another method"
        why += " than the policy checked"
    elif reason == _SESSION:
        why = f"reads as {shown!r}, a session id; callers may not send it"
    elif reason == _AUTH:
        why = f"reads as {shown!r}, an auth-class parameter; callers may not send credentials"
    elif name.lower() == shown:
        why = "is injected by the runtime; callers may not send it"
    else:
        why = f"reads as {shown!r}, which the runtime injects; callers may not send it"
    return Refusal(403, "E-QUERY-FORBIDDEN", f"{what} {why}")
