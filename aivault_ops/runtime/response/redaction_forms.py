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
from collections import defaultdict

LEADING_ZEROS = 6
MIN_TRIMMED = 8
"""Trimmed text shorter than this is not matched alone (the runtime's minimum secret length)."""
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
def _entity_names() -> defaultdict[str, tuple[str, ...]]:
    """Character → every HTML5 named reference (with `;`) that decodes to it."""
    names: dict[str, list[str]] = {}
    for name, text in html.entities.html5.items():
        if name.endswith(";") and len(text) == 1:
            names.setdefault(text, []).append(name)
    return defaultdict(tuple, {char: tuple(sorted(found)) for char, found in names.items()})


def entity_letters(secret: str) -> bytes:
    """The bytes of the named references of `secret`'s characters."""
    names = _entity_names()
    return "".join("".join(names[char]) for char in set(secret)).encode()


def _hex_pattern(value: int, width: int) -> bytes:
    digits = f"{value:0{width}x}"
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in digits).encode()


def _group(options: list[Piece]) -> Piece:
    return b"(?:" + b"|".join(p for p, _ in options) + b")", max(n for _, n in options)


def _percent(raw: bytes) -> Piece:
    """Percent-encoded per UTF-8 byte (any hex case), also twice (`%252F`)."""
    return b"".join(b"%(?:25)?" + _hex_pattern(byte, 2) for byte in raw), 5 * len(raw)


def _backslash(char: str) -> Piece:
    """Escapes that begin with a backslash: JSON (`\\n`, `\\uXXXX`, surrogate pairs
    beyond U+FFFF) and JavaScript or Python (`\\'`, `\\xHH` per UTF-8 byte as in a
    `bytes` repr, or for a code point below U+0100)."""
    raw = char.encode()
    units = char.encode("utf-16-be")
    words = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    options = [
        (b"u" + rb"\\u".join(_hex_pattern(word, 4) for word in words), 6 * len(words) - 1),
        (b"x" + rb"\\x".join(_hex_pattern(byte, 2) for byte in raw), 4 * len(raw) - 1),
    ]
    if 0x80 <= ord(char) < 0x100:
        options.append((b"x" + _hex_pattern(ord(char), 2), 3))
    if char in _JSON_SHORT or char == "'":
        options.append((re.escape(_JSON_SHORT.get(char, "\\'")[1:].encode()), 1))
    pattern, longest = _group(options)
    return rb"\\" + pattern, longest + 1


def _ampersand(char: str) -> Piece:
    """HTML character references: every HTML5 name that decodes to `char`, decimal
    and hex (`&#x`/`&#X`, any hex case) with up to 6 leading zeros; `;` required."""
    zeros = b"0{0,%d}" % LEADING_ZEROS
    decimal = str(ord(char)).encode()
    digits = f"{ord(char):x}"
    options = [
        (b"#" + zeros + decimal, 1 + LEADING_ZEROS + len(decimal)),
        (b"#[xX]" + zeros + _hex_pattern(ord(char), 1), 2 + LEADING_ZEROS + len(digits)),
    ]
    options += [(re.escape(name[:-1].encode()), len(name) - 1) for name in _entity_names()[char]]
    pattern, longest = _group(options)
    return b"&" + pattern + b";", longest + 2


@functools.cache
def char_piece(char: str) -> Piece:
    """One character in any of its spellings (any mix along a secret).

    ASCII letters and digits are matched raw only (no encoder escapes them
    character by character; fully escaped spellings are literals instead),
    which keeps every match anchored on the secret's alphanumeric runs.
    Spellings are grouped by their first byte (`%`, `\\`, `&`), which keeps
    the pattern small for long secrets; the raw character comes last, so an
    escape it begins (`&amp;`, `%25`, `\\x5c`) is taken whole, also at the
    end of the secret.
    """
    raw = char.encode()
    if char.isascii() and char.isalnum():
        return raw, 1
    options = [_percent(raw), _backslash(char), _ampersand(char)]
    if char == " ":
        options += [(rb"\+", 1), (b"%2[bB]", 3)]
    if char == "\n":
        options += [(rb"\r\n", 2), (rb"\\r\\n", 4), (b"%0[dD]%0[aA]", 6), (b"&#13;&#10;", 10)]
    return _group([*options, (re.escape(raw), len(raw))])


def _sequence(text: str) -> Piece:
    parts = [char_piece(char) for char in text]
    return b"".join(part for part, _ in parts), sum(length for _, length in parts)


def trimmed(secret: str) -> str:
    """The secret without surrounding whitespace, when what is left is still long
    enough to redact: an echo may trim it (a PEM key without its last line break)."""
    inner = secret.strip()
    return inner if len(inner) >= MIN_TRIMMED else secret


def spelling_piece(secret: str) -> Piece:
    """The secret with each character in any of its spellings; whitespace around
    it is optional (an echo that trimmed it still matches; one that did not is
    redacted whole)."""
    inner = trimmed(secret)
    if inner == secret:
        return _sequence(secret)
    start = secret.index(inner)
    lead, core, trail = (
        _sequence(part) for part in (secret[:start], inner, secret[start + len(inner) :])
    )
    optional = [(b"(?:" + p + b")?" if p else b"", n) for p, n in (lead, trail)]
    return optional[0][0] + core[0] + optional[1][0], lead[1] + core[1] + trail[1]


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
