"""Leaf values as sops serialises them: type names, canonical bytes, Go parsing.

The canonical bytes are both the AES-GCM plaintext and the MAC input, so they
must match Go's formatting exactly (`True`, shortest-digit floats without an
exponent, RFC3339Nano times).
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal

from aivault_ops.sops.tree import Leaf, SopsTime

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def type_name(value: Leaf) -> str:
    """The `type:` field sops writes for a leaf."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, SopsTime):
        return "time"
    return "str"


def format_float(value: float) -> str:
    """Go `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def canonical_bytes(value: Leaf) -> bytes:
    """The bytes sops encrypts and hashes for a leaf (`null` gives nothing)."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return format_float(value).encode()
    if isinstance(value, SopsTime):
        return value.text.encode()
    return value.encode("utf-8")


def decode(type_: str, plaintext: bytes, *, binary: bool = False) -> Leaf:
    """Parse decrypted bytes by their `type:` as Go does; ValueError when invalid."""
    if type_ == "str":
        return plaintext if binary else plaintext.decode("utf-8")
    text = plaintext.decode("utf-8")
    if type_ == "int":
        return parse_go_int(text)
    if type_ == "float":
        return parse_go_float(text)
    if type_ == "bool":
        return parse_go_bool(text)
    if type_ == "time":
        return SopsTime(normalize_rfc3339(text))
    raise ValueError(f"unknown datatype {type_}")


def parse_go_int(text: str) -> int:
    """Go `strconv.Atoi` for int64."""
    if not _INT.fullmatch(text):
        raise ValueError("invalid int")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("int out of range")
    return value


def parse_go_float(text: str) -> float:
    """Go `strconv.ParseFloat` for decimal text, `inf` and `nan`."""
    if not (_FLOAT.fullmatch(text) or _SPECIAL_FLOAT.fullmatch(text)):
        raise ValueError("invalid float")
    return float(text)


def parse_go_bool(text: str) -> bool:
    """Go `strconv.ParseBool`."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("invalid bool")


def normalize_rfc3339(text: str) -> str:
    """Parse RFC 3339 and format it as Go RFC3339Nano (fraction trimmed, `Z` for UTC)."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError("invalid time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    return format_time(year, month, day, (hour, minute, second), fraction, zone)


def format_time(
    year: str, month: str, day: str, clock: tuple[str, str, str], fraction: str | None, zone: str
) -> str:
    """Go RFC3339Nano text from parts; raises ValueError for impossible dates."""
    date(int(year), int(month), int(day))
    hour, minute, second = (int(part) for part in clock)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time out of range")
    digits = (fraction or "").lstrip(".")[:9].rstrip("0")
    frac = f".{digits}" if digits else ""
    if zone not in ("Z", "z") and int(zone[1:3]) == 0 and int(zone[4:6]) == 0:
        zone = "Z"
    stamp = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    return f"{stamp}T{hour:02d}:{minute:02d}:{second:02d}{frac}{zone.upper()}"
