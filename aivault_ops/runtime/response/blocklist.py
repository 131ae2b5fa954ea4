"""`responseBlocklist`: JSON paths whose values are redacted from responses.

Path syntax (a subset of JSONPath, compiled once when a policy loads; any
other syntax is refused then with `BlocklistError`):

- `$` — the whole document; followed by any number of steps:
- `.name` — a member whose name matches `[A-Za-z_][A-Za-z0-9_-]*`;
- `['any key']` — a member with any name without `'` (spaces, unicode …);
- `[N]` — the element at index N (0-based, non-negative) of an array;
- `[*]` or `.*` — every member of an object or element of an array;
- `..name`, `..['key']`, `..*` — recursive descent: that step applied to
  the value and every value nested in it, at any depth.

Every value a path matches is replaced by the string `"[REDACTED]"`; a path
that matches nothing changes nothing.

`redact_json_body` guarantees that a response under a blocklist is never
passed on unfiltered: it takes the body already decoded from its
`Content-Encoding` and capped in size (`body.py`, through `decoding.py`),
which must be JSON (`application/json` or any `…/…+json` media type), and
returns it re-serialized compactly as UTF-8. Anything else — another media
type, malformed JSON — is refused with a 502 `ResponseRefused` and the body
is dropped. An empty body is returned empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.errors import UpstreamFailure

REDACTED: Final = "[REDACTED]"
_STEP = re.compile(
    r"(?P<descend>\.\.|\.)?(?:"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_-]*)|(?P<star>\*)"
    r"|\[(?:(?P<all>\*)|(?P<index>[0-9]+)|'(?P<key>[^']+)')\])"
)
_JSON_TYPE = re.compile(r"application/json|[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+\+json")


class BlocklistError(AivaultError):
    """A `responseBlocklist` path that is not in the supported syntax."""


class ResponseRefused(UpstreamFailure):
    """An upstream response that cannot be filtered, so it is not passed on at all
    (502, audited `error`: the request was allowed, the answer failed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(502, code, message)


@dataclass(frozen=True)
class Step:
    """One path step: a member name, an index, or every child (`wildcard`)."""

    descend: bool
    key: str | None = None
    index: int | None = None
    wildcard: bool = False

    def matches(self, node: Any) -> Iterator[str | int]:
        """The keys (or indices) of `node` this step selects."""
        if isinstance(node, dict):
            if self.wildcard:
                yield from list(node)
            elif self.key is not None and self.key in node:
                yield self.key
        elif isinstance(node, list):
            if self.wildcard:
                yield from range(len(node))
            elif self.index is not None and self.index < len(node):
                yield self.index


def _step(match: re.Match[str], path: str) -> Step:
    descend = match["descend"] == ".."
    dotted = match["name"] is not None or match["star"] is not None
    if dotted != (match["descend"] is not None) and not descend:
        where = match.start() + 1
        raise BlocklistError(f"responseBlocklist path {path!r} is invalid at character {where}")
    if dotted:
        return Step(descend, key=match["name"], wildcard=match["star"] is not None)
    if match["index"] is not None:
        return Step(descend, index=int(match["index"]))
    return Step(descend, key=match["key"], wildcard=match["all"] is not None)


def parse_path(path: str) -> tuple[Step, ...]:
    """Compile one path; `BlocklistError` names the first character not understood."""
    if not path.startswith("$"):
        raise BlocklistError(f"responseBlocklist path {path!r} must start with '$'")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None or match.end() == position:
            raise BlocklistError(
                f"responseBlocklist path {path!r} is invalid at character {position + 1}"
            )
        steps.append(_step(match, path))
        position = match.end()
    return tuple(steps)


def _apply(node: Any, steps: tuple[Step, ...], at: int) -> None:
    step = steps[at]
    for key in step.matches(node):
        if at == len(steps) - 1:
            node[key] = REDACTED
        else:
            _apply(node[key], steps, at + 1)
    if step.descend and isinstance(node, dict | list):
        for child in list(node.values()) if isinstance(node, dict) else list(node):
            _apply(child, steps, at)


@dataclass(frozen=True)
class Blocklist:
    """Compiled `responseBlocklist` paths."""

    paths: tuple[tuple[Step, ...], ...]

    @classmethod
    def compile(cls, paths: Iterable[str]) -> Blocklist:
        """Compile every path, refusing the first invalid one."""
        return cls(tuple(parse_path(path) for path in paths))

    def __bool__(self) -> bool:
        return bool(self.paths)

    def apply(self, document: Any) -> Any:
        """Redact `document` (parsed JSON, changed in place); returns the new root."""
        for steps in self.paths:
            if not steps:
                return REDACTED
            _apply(document, steps, 0)
        return document


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` or `type/subtype+json`, parameters and case ignored."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return _JSON_TYPE.fullmatch(media_type) is not None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _serialize(document: Any) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate escape: keep it escaped
        return json.dumps(document, separators=(",", ":")).encode()


def redact_json_body(body: bytes, content_type: str | None, blocklist: Blocklist) -> bytes:
    """The decoded response body with every blocklisted value redacted.

    The caller must send the result with a new length. Raises
    `ResponseRefused` (502) instead of ever returning the unfiltered body.
    """
    if not body:
        return b""
    if not is_json_media_type(content_type):
        raise ResponseRefused(
            "E-RESPONSE-NOT-JSON",
            "the upstream response is not JSON, and this capability redacts JSON paths",
        )
    try:
        document = json.loads(body, parse_constant=_reject_constant)
        return _serialize(blocklist.apply(document))
    except (ValueError, RecursionError):
        raise ResponseRefused(
            "E-RESPONSE-NOT-JSON", "the upstream response is not valid JSON"
        ) from None
