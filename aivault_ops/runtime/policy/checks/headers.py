"""Caller request headers: refuse auth-class, routing and malformed ones, drop the rest.

Names are compared by `names.name_key` (case, `-`/`_`/`.`, blanks, NUL,
brackets, percent-encoding and Unicode folded away), so `X_Acme_Key`
counts as `X-Acme-Key`.

Refused (E-HEADER-FORBIDDEN, 403): the auth-class names in
`names.AUTH_CLASS_HEADERS` and every name the credential injects (header or
query parameter); the method-override and routing names in
`names.ROUTING_HEADERS` and every name starting `x-forwarded-`,
`x-original-`, `x-rewrite-` or `x-envoy-`; and any other spelling of a
dropped header (`Content_Length`). Refused (E-HEADER-INVALID, 400): a name
that is not an HTTP token; a value with a control character except TAB
(C0, DEL, C1), U+2028/U+2029, or a lone surrogate (values go on the wire as
UTF-8, so only visible ASCII, SP, HTAB and UTF-8 obs-text are sent); more
headers, or longer ones, than `limits` allows. Dropped silently: the
`NOT_FORWARDED` names of `runtime/hop_by_hop.py` (hop-by-hop headers,
`host`, `content-length`, `accept-encoding`, `expect`) and every header
named in `Connection`.

This is the only place caller headers are filtered. In passthrough the
headers are those of the caller's own connection to the runtime, so its
hop-by-hop ones (and those its `Connection` lists) end there: they are
removed before any rule is applied and are not counted. In an envelope they
are data: every one is judged, then the same names are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aivault_ops.runtime.hop_by_hop import NOT_FORWARDED, connection_tokens
from aivault_ops.runtime.model import Refusal, echo
from aivault_ops.runtime.policy.checks.limits import (
    MAX_HEADER_COUNT,
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_TOTAL_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    over_limit,
)
from aivault_ops.runtime.policy.checks.names import (
    AUTH_CLASS_HEADERS,
    ROUTING_HEADER_PREFIXES,
    ROUTING_HEADERS,
    TOKEN,
    NameRules,
)

_BAD_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_AUTH, _FRAMING, _ROUTING = "auth", "framing", "routing"
_INVALID = "E-HEADER-INVALID"
_ACCEPTED_MAX = 4096


class HeaderPolicy:
    """The request-header rules for one credential (built once per policy load)."""

    __slots__ = ("_accepted", "_rules")

    def __init__(self, injected_names: Iterable[str] = ()) -> None:
        injected = [name.lower() for name in injected_names]
        self._rules = NameRules(
            {
                _AUTH: (*AUTH_CLASS_HEADERS, *sorted(injected)),
                _ROUTING: ROUTING_HEADERS,
                _FRAMING: sorted(NOT_FORWARDED),
            },
            {_ROUTING: ROUTING_HEADER_PREFIXES},
        )
        # Names already accepted, as sent -> lower case (bounded). Callers repeat the
        # same dozen names; judging each once took sanitize() of 12 SDK headers from
        # 17.5 to 4 µs.
        self._accepted: dict[str, str] = {}

    def sanitize(
        self, headers: tuple[tuple[str, str], ...], *, passthrough: bool
    ) -> list[tuple[str, str]]:
        """The caller's headers that may go upstream.

        Prevents a caller from overriding or smuggling credentials (its own
        Authorization, a cookie, a second copy of the injected header, also
        spelled `X_Acme_Key`), from steering the upstream to another method,
        path or host than the policy checked (`X-HTTP-Method-Override`,
        `X-Original-URL`, `X-Forwarded-Host`, `Forwarded`), header injection
        through CR/LF/NUL, unsendable text, and connection-level tricks
        through hop-by-hop headers (request smuggling via Transfer-Encoding,
        upgrades to another protocol).
        """
        if passthrough:  # the caller's hop ends here: nothing of it is judged or counted
            headers = _off_the_hop(headers)
        if len(headers) > MAX_HEADER_COUNT:
            raise over_limit(_INVALID, "the number of request headers", MAX_HEADER_COUNT)
        listed = frozenset() if passthrough else connection_tokens(headers)
        kept: list[tuple[str, str]] = []
        total = 0
        for name, value in headers:
            total += len(name) + len(value)
            lower = self._accepted.get(name) or self._judge(name, passthrough)
            if len(value) > MAX_HEADER_VALUE_LENGTH or _BAD_VALUE.search(value):
                raise _bad_value(name, value)
            if lower not in NOT_FORWARDED and lower not in listed:
                kept.append((name, value))
        if total > MAX_HEADER_TOTAL_LENGTH:
            raise over_limit(_INVALID, "the request headers", MAX_HEADER_TOTAL_LENGTH, "characters")
        return kept

    def _judge(self, name: str, passthrough: bool) -> str:
        """A name not seen before: its lower case, or the refusal."""
        if len(name) > MAX_HEADER_NAME_LENGTH:
            raise over_limit(
                _INVALID, f"header name {echo(name)}", MAX_HEADER_NAME_LENGTH, "characters"
            )
        if TOKEN.fullmatch(name) is None:
            raise _invalid(name)
        lower = name.lower()
        found = None if lower in NOT_FORWARDED else self._rules.match(name)
        if found is not None:
            raise Refusal(403, "E-HEADER-FORBIDDEN", _forbidden_message(name, found, passthrough))
        if len(self._accepted) < _ACCEPTED_MAX:
            self._accepted[name] = lower
        return lower


def _off_the_hop(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The headers without the `NOT_FORWARDED` names and those `Connection` lists."""
    listed = connection_tokens(headers)
    return tuple(
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in NOT_FORWARDED and lower not in listed
    )


def _bad_value(name: str, value: str) -> Refusal:
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        return over_limit(
            _INVALID, f"the value of header {echo(name)}", MAX_HEADER_VALUE_LENGTH, "characters"
        )
    return _invalid(name)


def _invalid(name: str) -> Refusal:
    return Refusal(
        400,
        _INVALID,
        f"header {echo(name)} has an invalid name, or a value with a control character"
        " (CR, LF, NUL …) or a character that cannot be sent (a lone surrogate)",
    )


def _forbidden_message(name: str, found: tuple[str, str], passthrough: bool) -> str:
    shown, reason = found
    if reason == _ROUTING:
        return (
            f"header {echo(name)} is a method-override or routing header ({shown!r}); it could"
            " make the upstream apply another method, path or host than the policy checked"
        )
    if reason == _FRAMING:
        return (
            f"header {echo(name)} reads as {shown!r}, a connection or framing header"
            " the runtime sets itself"
        )
    how = (
        "send the consumer token once, as 'Authorization: Bearer' or 'X-Aivault-Token'"
        if passthrough
        else "the envelope's request.headers may not carry credentials"
    )
    if name.lower() == shown:
        return f"header {echo(name)} is an auth-class header the runtime sets itself; {how}"
    return f"header {echo(name)} reads as {shown!r}, an auth-class header the runtime sets itself"
