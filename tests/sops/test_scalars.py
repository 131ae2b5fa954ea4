"""Typing and canonical bytes exactly as sops (Go, yaml.v3) produces them."""

from __future__ import annotations

import math

import pytest

from aivault_ops.sops import scalars
from aivault_ops.sops.tree import Leaf, SopsTime
from aivault_ops.sops.yaml_resolve import UnsupportedScalar, resolve_plain


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (5e-324, "0." + "0" * 323 + "5"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (10000000000.0, "10000000000"),
    ],
)
def test_float_format_is_go_f_minus_one(value: float, text: str) -> None:
    assert scalars.format_float(value) == text


@pytest.mark.parametrize(
    ("value", "raw", "type_"),
    [
        (True, b"True", "bool"),
        (False, b"False", "bool"),
        (-17, b"-17", "int"),
        (2**63 - 1, b"9223372036854775807", "int"),
        (2.0, b"2", "float"),
        ("héllo", "héllo".encode(), "str"),
        (b"\x00\xff", b"\x00\xff", "str"),
        (SopsTime("2024-01-02T03:04:05Z"), b"2024-01-02T03:04:05Z", "time"),
        (None, b"", "str"),
    ],
)
def test_canonical_bytes_and_type(value: Leaf, raw: bytes, type_: str) -> None:
    assert scalars.canonical_bytes(value) == raw
    assert scalars.type_name(value) == type_


@pytest.mark.parametrize(
    ("type_", "raw", "value"),
    [
        ("int", b"+5", 5),
        ("float", b"1e3", 1000.0),
        ("bool", b"true", True),
        ("bool", b"t", True),
        ("bool", b"0", False),
        ("time", b"2001-12-14T21:59:43.10-05:00", SopsTime("2001-12-14T21:59:43.1-05:00")),
        ("time", b"2024-01-02T03:04:05+00:00", SopsTime("2024-01-02T03:04:05Z")),
    ],
)
def test_decode_accepts_what_go_accepts(type_: str, raw: bytes, value: object) -> None:
    assert scalars.decode(type_, raw) == value


@pytest.mark.parametrize(
    ("type_", "raw"),
    [
        ("int", b" 5"),
        ("int", b"5.0"),
        ("bool", b"yes"),
        ("float", b"1_0"),
        ("bytes", b"x"),
        ("time", b"2024-1-2"),
    ],
)
def test_decode_rejects_what_go_rejects(type_: str, raw: bytes) -> None:
    with pytest.raises(ValueError):
        scalars.decode(type_, raw)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("n", "n"),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("017", 15),
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("+5", 5),
        ("08", 8.0),
        ("1e3", 1000.0),
        ("1.0e+10", 1e10),
        (".5", 0.5),
        ("-.inf", -math.inf),
        ("99999999999999999999", 1e20),
        ("-9223372036854775809", -9223372036854775809.0),
        ("2024-01-02", SopsTime("2024-01-02T00:00:00Z")),
        ("2024-1-2 3:4:5", SopsTime("2024-01-02T03:04:05Z")),
        ("2001-12-14t21:59:43.10-05:00", SopsTime("2001-12-14T21:59:43.1-05:00")),
        ("2024-13-01", "2024-13-01"),
        ("2024-01-02T03:04:05", "2024-01-02T03:04:05"),
        ("12:30", "12:30"),
        ("-", "-"),
        ("<<", "<<"),
    ],
)
def test_plain_scalars_resolve_like_yaml_v3(text: str, value: object) -> None:
    resolved = resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


def test_nan_resolves_to_float_nan() -> None:
    value = resolve_plain(".nan")
    assert isinstance(value, float) and math.isnan(value)


def test_uint64_integers_are_refused_as_sops_does() -> None:
    with pytest.raises(UnsupportedScalar):
        resolve_plain("18446744073709551615")
