"""Path syntax, traversal and the segment-boundary prefix match.

The upstream receives the caller's path as sent (percent-encoded), so the
runtime must refuse every spelling that an upstream, a CDN or a framework in
between could resolve to a different path than the one the prefix check
saw. Rules (all after one round of percent-decoding unless noted):

- the raw path starts with "/" and uses only URL path characters; every
  `%` is followed by two hex digits;
- no `.` or `..` segment (also `..;param`, with surrounding blanks, or
  spelled with Unicode look-alikes such as fullwidth dots under NFKC);
- no `/` or `\\` inside a segment: raw `\\`, `%2f`, `%5c` are refused;
- no control character (NUL, CR, LF, TAB, DEL …);
- no double encoding of `.`, `/`, `\\`, `%` or a control character
  (`%252e`, `%252f`, `%255c`, `%2525`, `%250a`);
- no empty segment (`//`), except a single trailing slash.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from aivault_ops.runtime.model import Refusal, echo
from aivault_ops.runtime.policy.checks.limits import MAX_PATH_LENGTH, over_limit

PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986: a path's characters besides letters, digits, %
_RAW_PATH = re.compile(f"/[A-Za-z0-9{re.escape(PATH_SAFE)}%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SEPARATOR = re.compile(r"%(?:2[fF]|5[cC])")
_BAD_DECODED = re.compile(rb"[\x00-\x1f\x7f]|%(?:2[eEfF]|5[cC]|25|[01][0-9a-fA-F]|7[fF])")
_DOT_SEGMENTS = frozenset({".", ".."})


@dataclass(frozen=True)
class RequestPath:
    """A path that passed the traversal rules: as sent, and decoded once."""

    raw: str
    decoded: bytes


def _invalid(raw_path: str, why: str) -> Refusal:
    return Refusal(400, "E-PATH-INVALID", f"path {echo(raw_path)} is invalid: {why}")


def _traversal(raw_path: str, why: str) -> Refusal:
    return Refusal(400, "E-PATH-TRAVERSAL", f"path {echo(raw_path)} is refused: {why}")


def _is_dot_segment(segment: str) -> bool:
    return segment.split(";", 1)[0].strip(" \t") in _DOT_SEGMENTS


def _check_unicode(raw_path: str, segment: bytes) -> None:
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(raw_path, "percent-decoded segment is not UTF-8") from None
    folded = unicodedata.normalize("NFKC", text)
    if _is_dot_segment(folded) or "/" in folded or "\\" in folded:
        raise _traversal(raw_path, "a segment normalizes to a dot segment or a separator")


def _check_segments(raw_path: str, decoded: bytes) -> None:
    if b"//" in decoded:
        raise _traversal(raw_path, "empty path segment ('//')")
    if b"." not in decoded and decoded.isascii():
        return
    for segment in decoded.split(b"/")[1:]:
        if segment.isascii():
            if _is_dot_segment(segment.decode("ascii")):
                raise _traversal(raw_path, "'.' and '..' segments are not allowed")
        else:
            _check_unicode(raw_path, segment)


def parse_path(raw_path: str) -> RequestPath:
    """Check a caller's percent-encoded path against every traversal rule.

    Prevents path traversal out of the capability's prefix (`/v1/users/../admin`,
    `/v1/users/%2e%2e/admin`, `/v1/users%2f..%2fadmin`, `/v1/users/%252e%252e/`,
    `..\\`), header/request splitting through CR/LF or NUL in the path, and
    ambiguous spellings an upstream could resolve differently, and paths
    longer than `MAX_PATH_LENGTH` characters.
    """
    if len(raw_path) > MAX_PATH_LENGTH:
        raise over_limit("E-PATH-INVALID", "the path", MAX_PATH_LENGTH, "characters")
    if "\\" in raw_path:
        raise _traversal(raw_path, "backslash in path")
    if _RAW_PATH.fullmatch(raw_path) is None:
        raise _invalid(raw_path, "it must start with '/' and be percent-encoded")
    if "%" in raw_path:
        if _BAD_ESCAPE.search(raw_path):
            raise _invalid(raw_path, "'%' not followed by two hex digits")
        if _ENCODED_SEPARATOR.search(raw_path):
            raise _traversal(raw_path, "encoded '/' or '\\' inside a segment")
        decoded = unquote_to_bytes(raw_path)
        if _BAD_DECODED.search(decoded):
            raise _traversal(raw_path, "control character or double percent-encoding")
    else:
        decoded = raw_path.encode("ascii")
    _check_segments(raw_path, decoded)
    return RequestPath(raw=raw_path, decoded=decoded)


class PathPrefix:
    """One allowed path prefix, matched on a segment boundary.

    Prevents `/v1/users` from also allowing `/v1/usersX` or `/v1/users-admin`:
    the decoded path must equal the prefix or continue it with "/". A prefix
    that itself ends with "/" (`/v3/`) allows everything below it.
    """

    __slots__ = ("_below", "_exact", "length", "text")

    def __init__(self, prefix: str) -> None:
        self.text = prefix
        encoded = prefix.encode()
        self.length = len(encoded)
        self._exact = None if prefix.endswith("/") else encoded
        self._below = encoded if prefix.endswith("/") else encoded + b"/"

    def matches(self, decoded_path: bytes) -> bool:
        """Whether the decoded path lies at or below this prefix."""
        return decoded_path == self._exact or decoded_path.startswith(self._below)


def longest_match(prefixes: tuple[PathPrefix, ...], decoded_path: bytes) -> int:
    """Length of the longest matching prefix, or -1 when none matches."""
    best = -1
    for prefix in prefixes:
        if prefix.length > best and prefix.matches(decoded_path):
            best = prefix.length
    return best


def check_prefix(prefixes: tuple[PathPrefix, ...], path: RequestPath, *, capability: str) -> None:
    """Refuse a path outside every `pathPrefixes` entry of the capability.

    Prevents a capability for one part of an API from reaching the rest of it.
    """
    if longest_match(prefixes, path.decoded) < 0:
        raise Refusal(
            403,
            "E-PATH-NOT-ALLOWED",
            f"path {echo(path.raw)} is outside the prefixes of capability {capability!r}"
            f" ({', '.join(p.text for p in prefixes)})",
        )
