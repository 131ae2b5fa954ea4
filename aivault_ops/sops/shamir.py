"""Shamir secret sharing over GF(2^8) with the AES polynomial, as sops does it.

A share is the y bytes (one per secret byte) followed by one x-coordinate
byte. Recovery is Lagrange interpolation at x = 0, byte by byte.
"""

from __future__ import annotations

import secrets

_EXP = [0] * 512
_LOG = [0] * 256


def _build_tables() -> None:
    value = 1
    for power in range(255):
        _EXP[power] = value
        _LOG[value] = power
        value ^= _xtime(value)  # multiply by the generator 3 = x + 1
    for power in range(255, 512):
        _EXP[power] = _EXP[power - 255]


def _xtime(value: int) -> int:
    value <<= 1
    return value ^ 0x11B if value & 0x100 else value


_build_tables()


def mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) mod 0x11b."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def div(a: int, b: int) -> int:
    """Divide in GF(2^8) mod 0x11b (b must not be 0)."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def _evaluate(coefficients: list[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = mul(result, x) ^ coefficient
    return result


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """Split `secret` into `parts` shares, any `threshold` of which recover it."""
    if not 1 <= threshold <= parts <= 255:
        raise ValueError("need 1 <= threshold <= parts <= 255")
    shares = [bytearray() for _ in range(parts)]
    for byte in secret:
        coefficients = [byte] + [secrets.randbelow(256) for _ in range(threshold - 1)]
        for index, share in enumerate(shares):
            share.append(_evaluate(coefficients, index + 1))
    return [bytes(share) + bytes([index + 1]) for index, share in enumerate(shares)]


def combine(shares: list[bytes]) -> bytes:
    """Recover the secret from shares (each ending in its x byte)."""
    if not shares or len({len(share) for share in shares}) != 1:
        raise ValueError("need shares of equal length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs) or 0 in xs:
        raise ValueError("duplicate or zero share x-coordinates")
    weights = [_lagrange_weight(xs, j) for j in range(len(xs))]
    secret = bytearray()
    for position in range(len(shares[0]) - 1):
        byte = 0
        for share, weight in zip(shares, weights, strict=True):
            byte ^= mul(share[position], weight)
        secret.append(byte)
    return bytes(secret)


def _lagrange_weight(xs: list[int], j: int) -> int:
    weight = 1
    for m, x_m in enumerate(xs):
        if m != j:
            weight = mul(weight, div(x_m, xs[j] ^ x_m))
    return weight
