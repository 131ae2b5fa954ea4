"""The spellings of a secret that the redactor searches for.

Each function here turns a secret into regex pieces or literals; the
redactor (`redaction.py`) joins them into one pattern per credential. The
forms and their limits are listed in the module docstring of `redaction.py`.
"""

from __future__ import annotations

import base64
import functools
import html.entities
import re

LEADING_ZEROS = 6
LINE_BREAK = rb"(?:\r?\n)?"
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_JSON_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
Piece = tuple[bytes, int]
"""A regex and the longest text it can match."""


@functools.cache
def _entity_names() -> dict[str, tuple[str, ...]]:
    """Character → every HTML5 named reference (with `;`) that decodes to it."""
    names: dict[str, list[str]] = {}
    for name, text in html.entities.html5.items():
        if name.endswith(";") and len(text) == 1:
            names.setdefault(text, []).append(name)
    return {char: tuple(sorted(found)) for char, found in names.items()}


def entity_letters(secret: str) -> bytes:
    """The bytes of the named references of `secret`'s characters."""
    names = _entity_names()
    return "".join("".join(names.get(char, ())) for char in set(secret)).encode()


def _hex_pattern(value: int, width: int) -> bytes:
    digits = f"{value:0{width}x}"
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in digits).encode()


def _json_unit(char: str) -> Piece:
    units = char.encode("utf-16-be")
    pattern = b"".join(
        rb"\\u" + _hex_pattern(int.from_bytes(units[i : i + 2], "big"), 4)
        for i in range(0, len(units), 2)
    )
    return pattern, 3 * len(units)


def _percent(raw: bytes) -> list[Piece]:
    """Percent-encoded per UTF-8 byte (any hex case), and encoded twice (`%252F`)."""
    once = b"".join(b"%" + _hex_pattern(byte, 2) for byte in raw)
    twice = b"".join(b"%25" + _hex_pattern(byte, 2) for byte in raw)
    return [(once, 3 * len(raw)), (twice, 5 * len(raw))]


def _string_escapes(char: str) -> list[Piece]:
    """JavaScript and Python string-literal escapes: `\\'`, and `\\xHH` per UTF-8
    byte (as in a `bytes` repr) or, below U+0100, for the code point (JavaScript)."""
    raw = char.encode()
    options = [(b"".join(rb"\\x" + _hex_pattern(byte, 2) for byte in raw), 4 * len(raw))]
    if 0x80 <= ord(char) < 0x100:
        options.append((rb"\\x" + _hex_pattern(ord(char), 2), 4))
    if char == "'":
        options.append((rb"\\'", 2))
    return options


def _entities(char: str) -> list[Piece]:
    """Named (as HTML5 decodes them) and numeric character references, `;` required."""
    named = [
        (re.escape(f"&{name}".encode()), len(name) + 1) for name in _entity_names().get(char, ())
    ]
    zeros = b"0{0,%d}" % LEADING_ZEROS
    decimal = str(ord(char)).encode()
    digits = _hex_pattern(ord(char), 1)
    numeric = [
        (b"&#" + zeros + decimal + b";", 3 + LEADING_ZEROS + len(decimal)),
        (b"&#[xX]" + zeros + digits + b";", 4 + LEADING_ZEROS + len(f"{ord(char):x}")),
    ]
    return named + numeric


@functools.cache
def char_piece(char: str) -> Piece:
    """One character in any of its spellings (any mix along a secret).

    ASCII letters and digits are matched raw only (no encoder escapes them
    character by character; fully escaped spellings are literals instead),
    which keeps every match anchored on the secret's alphanumeric runs.
    The raw character comes last: an escape it begins (`&amp;`, `%25`,
    `\\x5c`) is taken whole, also at the end of the secret.
    """
    raw = char.encode()
    if char.isascii() and char.isalnum():
        return raw, 1
    options: list[Piece] = _percent(raw)
    if char == " ":
        options += [(rb"\+", 1), (b"%2[bB]", 3)]
    if char in _JSON_SHORT:
        options.append((re.escape(_JSON_SHORT[char].encode()), 2))
    options += [_json_unit(char), *_string_escapes(char), *_entities(char)]
    options.append((re.escape(raw), len(raw)))
    return b"(?:" + b"|".join(p for p, _ in options) + b")", max(n for _, n in options)


def spelling_piece(secret: str) -> Piece:
    """The secret with each character in any of its spellings."""
    parts = [char_piece(char) for char in secret]
    return b"".join(part for part, _ in parts), sum(length for _, length in parts)


def anchor(secret: str) -> bytes:
    """The longest ASCII-alphanumeric run: every `spelling_piece` match contains it."""
    runs = re.findall(rb"[A-Za-z0-9]+", secret.encode())
    return max(runs, key=len, default=b"")


def escaped_everywhere(secret: str) -> set[bytes]:
    """Every character escaped by one escaper: percent (per byte), `\\u`, HTML numeric."""
    raw = secret.encode()
    units = secret.encode("utf-16-be")
    percent = "".join(f"%{byte:02x}" for byte in raw)
    json_units = "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )
    hex_refs = "".join(f"&#x{ord(char):x};" for char in secret)
    spellings = {percent, percent.upper(), json_units, json_units.upper().replace("\\U", "\\u")}
    spellings |= {hex_refs, hex_refs.upper().replace("&#X", "&#x")}
    spellings.add("".join(f"&#{ord(char)};" for char in secret))
    return {spelling.encode() for spelling in spellings}


def base64_cores(raw: bytes) -> set[bytes]:
    """The base64 text that encodes `raw` at byte offset 0, 1 or 2 of a longer text."""
    cores: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        cores.add(encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6])
    return cores | {core.translate(_URLSAFE) for core in cores}


def base64_spellings(raw: bytes) -> set[bytes]:
    """Every base64 text that betrays `raw`: whole, unpadded, and at offsets 0-2."""
    whole = base64.b64encode(raw)
    found = {whole, whole.rstrip(b"=")}
    found |= {spelling.translate(_URLSAFE) for spelling in found}
    found |= base64_cores(raw)
    found.discard(b"")
    return found


def wrapped_texts(raw: bytes) -> set[bytes]:
    """The base64 texts matched with line breaks: the cores, and the whole encoding
    (so no padded remainder is left after `[REDACTED]`)."""
    whole = base64.b64encode(raw)
    return base64_cores(raw) | {whole, whole.translate(_URLSAFE)}


def wrapped_piece(core: bytes) -> Piece:
    """A base64 core with a line break (`\\r\\n` or `\\n`) allowed between any two characters."""
    pattern = LINE_BREAK.join(re.escape(core[i : i + 1]) for i in range(len(core)))
    return pattern, 3 * len(core) - 2
