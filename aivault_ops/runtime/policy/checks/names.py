"""One normalisation for caller header and query names, and the name lists it is checked against.

Servers, frameworks and the proxies in front of them do not agree on what
a name is: CGI and WSGI turn `X_Acme_Key` and `X-Acme-Key` into the same
`HTTP_X_ACME_KEY`; PHP reads `api_key[]`, `api.key` and `api key` as
`api_key`; some stacks percent-decode names once more, strip blanks or NUL,
or fold Unicode. A caller name that any of them could read as an injected
name would travel beside the injected credential and might win over it.

`name_key` maps every such spelling to one key: percent-decoded until it no
longer changes, cut at the first `[` (array and hash syntax), NFKC-folded,
case-folded, and with every character that is not a letter or digit
removed (`-`, `_`, `.`, `+`, blanks, NUL and other controls, zero-width
and other format characters). Two names with the same key are treated as
one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Final
from urllib.parse import unquote

TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110: a header name, a method
_NOT_ALNUM: Final = re.compile(r"[\W_]+")
_DECODE_ROUNDS: Final = 4
_CACHED_LENGTH: Final = 256
_SPLIT: Final = re.compile(r"[&;=?#]")
_BLANKS: Final = "".join(map(chr, range(33))) + "\x7f"

AUTH_CLASS_HEADERS: Final = (
    "authorization", "proxy-authorization", "cookie", "cookie2", "x-api-key",
    "x-aivault-token", "api-key", "x-auth-token", "x-access-token",
)  # fmt: skip
ROUTING_HEADERS: Final = (
    "x-http-method", "x-http-method-override", "x-method-override", "x-original-method",
    "x-original-url", "x-original-uri", "x-rewrite-url", "x-override-url", "x-proxy-url",
    "x-original-host", "x-host", "x-http-host-override", "x-forwarded-host",
    "x-forwarded-proto", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server",
    "x-forwarded-for", "x-forwarded-path", "x-forwarded-uri", "x-forwarded-scheme",
    "x-forwarded-ssl", "x-url-scheme", "x-scheme", "forwarded", "via", "x-real-ip",
    "x-client-ip", "true-client-ip", "x-cluster-client-ip", "client-ip",
    "cf-connecting-ip", "fastly-client-ip", "x-envoy-original-path", "x-ms-original-url",
)  # fmt: skip
ROUTING_HEADER_PREFIXES: Final = ("x-forwarded-", "x-original-", "x-rewrite-", "x-envoy-")
AUTH_CLASS_QUERY: Final = (
    "authorization", "access_token", "api_key", "x-api-key", "x-aivault-token",
)  # fmt: skip
METHOD_OVERRIDE_QUERY: Final = ("x-http-method-override", "x-http-method", "x-method-override")
METHOD_OVERRIDE_FIELDS: Final = frozenset({"_method"})


def _decoded(name: str) -> str:
    for _ in range(_DECODE_ROUNDS):
        if "%" not in name:
            break
        name = unquote(name, errors="surrogateescape")
    return name


def plain_name(name: str) -> str:
    """A lighter normalisation that keeps `-`, `_` and `.`: percent-decoded, cut at `[`,
    case-folded, blanks and controls stripped at both ends (`_method` stays apart from
    `method`, which APIs such as Flickr use as an ordinary parameter)."""
    return _decoded(name).split("[", 1)[0].casefold().strip(_BLANKS)


def pieces(name: str) -> list[str]:
    """`name`, and when its decoded form holds `&`, `;`, `=`, `?` or `#`, every piece
    between them: what a server that decodes a query twice would split it into."""
    if "%" not in name and _SPLIT.search(name) is None:
        return [name]
    return [name, *_SPLIT.split(_decoded(name))]


def name_key(name: str) -> str:
    """The normalised key of a header or query name (see the module docstring)."""
    return _cached_key(name) if len(name) <= _CACHED_LENGTH else _key(name)


# Callers repeat the same names: a cached key costs 0.07 µs instead of about 1 µs.
# Only short names are kept, so the cache stays under 1 MiB.
@lru_cache(maxsize=4096)
def _cached_key(name: str) -> str:
    return _key(name)


def _key(name: str) -> str:
    name = _decoded(name)
    base = name.split("[", 1)[0] or name
    if not base.isascii():
        base = unicodedata.normalize("NFKC", base)
    return _NOT_ALNUM.sub("", base.casefold())


class NameRules:
    """Lists of refused names, each with a reason, matched by key (built once per policy load).

    `groups` maps a reason to names; `prefixes` maps a reason to name
    prefixes (a key starting with a prefix's key matches). The first group
    that lists a key wins.
    """

    __slots__ = ("_prefixes", "_starts", "_table")

    def __init__(
        self,
        groups: Mapping[str, Iterable[str]],
        prefixes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._table: dict[str, tuple[str, str]] = {}
        for reason, names in groups.items():
            for name in names:
                self._table.setdefault(name_key(name), (name.lower(), reason))
        self._prefixes = tuple(
            (name_key(prefix), (prefix.lower() + "*", reason))
            for reason, listed in (prefixes or {}).items()
            for prefix in listed
        )
        self._starts = tuple(start for start, _ in self._prefixes)

    def match(self, name: str) -> tuple[str, str] | None:
        """(the listed name or `prefix*` that `name` reads as, its reason), or None."""
        key = name_key(name)
        found = self._table.get(key)
        if found is not None or not key.startswith(self._starts):
            return found
        return next(hit for start, hit in self._prefixes if key.startswith(start))
