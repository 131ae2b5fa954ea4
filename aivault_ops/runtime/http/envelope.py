"""The `POST /aivault/proxy` envelope: parse the request, format the response.

Request: `{"capability": str, "request": {"method": str, "path": str,
"query": {name: str | [str]}, "headers": {name: str}, "body": str |
"bodyBase64": str}}`. Only `capability` and `request.path` are required;
`method` defaults to GET and is upper-cased. The path is percent-encoded
where it holds characters that are not legal in a URL path (a space becomes
`%20`); `?` and `#` are refused: query parameters go in `query`. There is no
host or scheme: they come from policy only. Unknown keys are refused. The
envelope is UTF-8 JSON nested at most `MAX_ENVELOPE_DEPTH` levels, with at
most `MAX_ENVELOPE_CONTAINERS` objects and arrays; every string must be
encodable for the wire (no lone surrogates: use `bodyBase64` for bytes).

Response: `{"status": int, "headers": {name: str}, "body": str}`, or
`"bodyBase64"` instead of `"body"` when the upstream body is not UTF-8.
Repeated response headers are joined with ", ".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from aivault_ops.runtime.model import InboundRequest, Refusal
from aivault_ops.runtime.policy.checks.limits import MAX_ENVELOPE_CONTAINERS, MAX_ENVELOPE_DEPTH
from aivault_ops.runtime.policy.checks.path import PATH_SAFE

_ENVELOPE_KEYS = frozenset({"capability", "request"})
_REQUEST_KEYS = frozenset({"method", "path", "query", "headers", "body", "bodyBase64"})
_PATH_SAFE = PATH_SAFE + "%\\"  # escapes kept, and a raw backslash for the path check to refuse
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST: Final = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")


def _bad(message: str) -> Refusal:
    return Refusal(400, "E-ENVELOPE-INVALID", message)


def _object(value: Any, where: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be a JSON object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise _bad(f"{where} has unknown field(s): {', '.join(unknown)}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where} must be a string")
    return value


def _path(value: Any) -> str:
    path = _string(value, "request.path")
    if not path.startswith("/"):
        raise _bad("request.path must start with '/'")
    if "?" in path or "#" in path:
        raise _bad("request.path may not contain '?' or '#'; put parameters in request.query")
    try:
        return quote(path, safe=_PATH_SAFE)
    except UnicodeEncodeError:
        raise Refusal(
            400, "E-PATH-INVALID", "request.path holds a lone surrogate, which cannot be sent"
        ) from None


def _query(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _bad("request.query must be an object of strings or lists of strings")
    pairs: list[tuple[str, str]] = []
    for name, item in value.items():
        items = item if isinstance(item, list) else [item]
        pairs.extend((name, _string(v, f"request.query[{name!r}]")) for v in items)
    return tuple(pairs)


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _bad("request.headers must be an object of strings")
    return tuple((name, _string(v, f"request.headers[{name!r}]")) for name, v in value.items())


def _body(request: Mapping[str, Any]) -> bytes:
    if "body" in request and "bodyBase64" in request:
        raise _bad("request may have body or bodyBase64, not both")
    if "bodyBase64" in request:
        try:
            return base64.b64decode(
                _string(request["bodyBase64"], "request.bodyBase64"), validate=True
            )
        except binascii.Error:
            raise _bad("request.bodyBase64 is not valid base64") from None
    try:
        return _string(request.get("body", ""), "request.body").encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(
            "request.body holds a lone surrogate, which cannot be sent as UTF-8;"
            " send bytes as request.bodyBase64"
        ) from None


def check_nesting(body: bytes) -> None:
    """Refuse an envelope nested deeper than MAX_ENVELOPE_DEPTH before it is parsed.

    Prevents a RecursionError (a 500) or a deep walk: the JSON parser recurses
    once per level. Brackets inside strings do not count. The structure is
    reduced by removing innermost `[]`/`{}` pairs, one level per round.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_ENVELOPE_DEPTH:
        return
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if len(brackets) > 2 * MAX_ENVELOPE_CONTAINERS:
        raise _bad(f"the envelope has more than {MAX_ENVELOPE_CONTAINERS} JSON objects and arrays")
    for _ in range(MAX_ENVELOPE_DEPTH):
        if not brackets:
            return
        shorter = _INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            raise _bad("the envelope is not valid JSON")
        brackets = shorter
    if brackets:
        raise _bad(f"the envelope is nested deeper than {MAX_ENVELOPE_DEPTH} levels")


def _document(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("the envelope is not valid JSON") from None
    check_nesting(body)
    try:
        return json.loads(text)
    except ValueError:
        raise _bad("the envelope is not valid JSON") from None


def parse_envelope(body: bytes) -> tuple[str, InboundRequest]:
    """(capability, request) from an envelope; Refusal 400 E-ENVELOPE-INVALID otherwise."""
    document = _document(body)
    envelope = _object(document, "the envelope", _ENVELOPE_KEYS)
    capability = _string(envelope.get("capability"), "capability")
    request = _object(envelope.get("request"), "request", _REQUEST_KEYS)
    inbound = InboundRequest(
        method=_string(request.get("method", "GET"), "request.method").upper(),
        raw_path=_path(request.get("path")),
        query=_query(request.get("query")),
        headers=_headers(request.get("headers")),
        body=_body(request),
    )
    return capability, inbound


def envelope_response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The JSON response envelope (`bodyBase64` when `body` is not UTF-8)."""
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    document: dict[str, Any] = {"status": status, "headers": merged}
    try:
        document["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        document["bodyBase64"] = base64.b64encode(body).decode("ascii")
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
