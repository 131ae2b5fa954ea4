"""Plain YAML scalars typed the way Go's yaml.v3 (and so sops) types them.

PyYAML follows YAML 1.1 (`yes` is a bool, `017` is 17); sops does not. Using
PyYAML's resolver would give values a different `type:` than `sops -e` gives.
"""

from __future__ import annotations

import math
import re

from aivault_ops.sops.scalars import INT64_MAX, INT64_MIN, format_time
from aivault_ops.sops.tree import Leaf, SopsTime


class UnsupportedScalar(ValueError):
    """A scalar sops cannot represent (an integer above int64)."""


_MAP: dict[str, Leaf] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:(?:([Tt])|[ ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def resolve_plain(text: str) -> Leaf:
    """The value yaml.v3 gives an untagged plain scalar."""
    if text in _MAP:
        return _MAP[text]
    if text[0] in "+-.0123456789":
        return _resolve_number(text)
    return text


def _resolve_number(text: str) -> Leaf:
    if text[0] == ".":
        return float(text) if _GO_FLOAT.fullmatch(text) else text
    stamp = parse_timestamp(text)
    if stamp is not None:
        return stamp
    plain = text.replace("_", "")
    as_int = _parse_int(plain)
    if as_int is not None:
        if as_int > INT64_MAX:
            raise UnsupportedScalar("integer above int64")
        return as_int
    if _YAML_FLOAT.fullmatch(plain):
        return float(plain)
    return text


def _parse_int(text: str) -> int | None:
    """Go `strconv.ParseInt(s, 0, 64)`, then ParseUint; None when neither parses."""
    match = _GO_INT.fullmatch(text)
    if not match:
        return None
    sign, digits = match.groups()
    value = _int_with_prefix(digits)
    if sign == "-":
        value = -value
        return value if value >= INT64_MIN else None
    if value > 2**64 - 1 or (sign == "+" and value > INT64_MAX):
        return None
    return value


def _int_with_prefix(digits: str) -> int:
    prefix = digits[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        return int(digits[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
    if digits.startswith("0") and len(digits) > 1:
        return int(digits[1:], 8)
    return int(digits)


def parse_timestamp(text: str) -> SopsTime | None:
    """yaml.v3's timestamp formats, as Go RFC3339Nano text; None when not a timestamp."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, _t, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        hour = minute = second = "0"
    elif (zone is None) == (_t is not None):
        return None
    try:
        return SopsTime(
            format_time(year, month, day, (hour, minute, second), fraction, zone or "Z")
        )
    except ValueError:
        return None
