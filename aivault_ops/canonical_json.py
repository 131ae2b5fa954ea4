"""Canonical JSON: the one byte encoding of everything that is signed or digested.

`canonical_json` gives one byte string per value (sorted keys, no insignificant
whitespace, UTF-8, no NaN or infinities), so equal data always signs and hashes
the same. `loads_strict` is its reading half for untrusted input: it refuses
what different JSON parsers would read differently.
"""

from __future__ import annotations

import json
from typing import Any

_CONTAINERS = (dict, list, tuple)


class JsonError(ValueError):
    """The value cannot be written, or the bytes cannot be read, as strict JSON."""


def canonical_json(obj: object) -> bytes:
    """Encode `obj` as canonical JSON bytes.

    Object keys must be strings (an int key would silently become a string and
    could collide with an existing one); NaN and infinities are refused because
    they are not JSON.
    """
    _check_keys(obj)
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as error:
        raise JsonError(f"not canonical-JSON-encodable: {error}") from None


def _check_keys(obj: object) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise JsonError(f"object key {key!r} is not a string")
            if isinstance(value, _CONTAINERS):
                _check_keys(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            if isinstance(item, _CONTAINERS):
                _check_keys(item)


def loads_strict(data: bytes) -> Any:
    """Parse UTF-8 JSON bytes, refusing ambiguity.

    Duplicate object keys are refused (parsers disagree on which one wins, so a
    signer and a verifier could read different values), as are `NaN`,
    `Infinity` and invalid UTF-8.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonError(f"not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise JsonError(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise JsonError("nested too deeply") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")
