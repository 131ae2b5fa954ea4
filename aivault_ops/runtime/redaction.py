"""Redact injected secret values from upstream responses.

An upstream that echoes the request (httpbin-style debugging endpoints, error
pages quoting the Authorization header, webhooks that reflect query strings)
must not hand the key back to the caller. Every secret value a credential
injects is searched for in each of its common spellings:

- raw, with any of its non-alphanumeric characters percent-encoded
  (`%2F`/`%2f`, `+` for a space) or JSON-escaped (`\\/`, `\\"`, `\\uXXXX`) in
  any mix, and with every character percent- or `\\u`-escaped;
- standard and URL-safe base64, padded and unpadded, and also the part of a
  longer base64 text that encodes the secret at byte offset 0, 1 or 2 (so
  `base64("user:" + secret)` in an echoed Basic header is caught too).

All patterns are compiled into one `re` alternation the first time a
credential's redactor is used (not at policy load);
a response is first checked for a few substrings that every match must
contain, so a clean body costs a handful of fast substring scans.
`StreamRedactor` holds back only the bytes at the end of a chunk that could
still begin a match (at most the longest pattern minus one), so a secret
split across chunks is still caught while streams such as SSE are not
delayed past their event boundaries.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MARK = b"[REDACTED]"
MARK_TEXT = MARK.decode()
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_HEX = b"0123456789abcdefABCDEF"
_JSON_SHORT = {'"': b'\\\\"', "\\": b"\\\\\\\\", "/": b"\\\\/", "\t": b"\\\\t"}


def _hex_pattern(value: int, width: int) -> bytes:
    digits = f"{value:0{width}x}"
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in digits).encode()


def _json_unit(char: str) -> bytes:
    units = char.encode("utf-16-be")
    return b"".join(
        rb"\\u" + _hex_pattern(int.from_bytes(units[i : i + 2], "big"), 4)
        for i in range(0, len(units), 2)
    )


def _char_alternatives(char: str) -> tuple[bytes, int]:
    """A regex for one character in any of its spellings, and its longest length.

    ASCII letters and digits are matched raw only (no encoder escapes them
    character by character; fully escaped spellings are literals instead),
    which keeps every match anchored on the secret's alphanumeric runs.
    """
    raw = char.encode()
    if char.isascii() and char.isalnum():
        return raw, 1
    alternatives = [re.escape(raw), b"".join(b"%" + _hex_pattern(byte, 2) for byte in raw)]
    if char == " ":
        alternatives.append(rb"\+")
    if char in _JSON_SHORT:
        alternatives.append(_JSON_SHORT[char])
    alternatives.append(_json_unit(char))
    longest = max(3 * len(raw), 6 * len(char.encode("utf-16-be")) // 2)
    return b"(?:" + b"|".join(alternatives) + b")", longest


def _spelling_pattern(secret: str) -> tuple[bytes, int]:
    parts = [_char_alternatives(char) for char in secret]
    return b"".join(part for part, _ in parts), sum(length for _, length in parts)


def _anchor(secret: str) -> bytes:
    """The longest ASCII-alphanumeric run: every spelling-pattern match contains it."""
    runs = re.findall(rb"[A-Za-z0-9]+", secret.encode())
    return max(runs, key=len, default=b"")


def _escaped_everywhere(raw: bytes, secret: str) -> set[bytes]:
    """Every byte percent-escaped, every character \\u-escaped (both hex cases)."""
    percent = "".join(f"%{byte:02x}" for byte in raw)
    units = secret.encode("utf-16-be")
    json_units = "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )
    return {
        spelling.encode()
        for text in (percent, json_units)
        for spelling in (text, text.upper().replace("\\U", "\\u"))
    }


def _base64_cores(raw: bytes) -> set[bytes]:
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
    found |= _base64_cores(raw)
    found.discard(b"")
    return found


class _Compiled:
    """What a redactor matches with, built from its secret values on first use.

    `gates` are substrings at least one of which every possible match
    contains; when none occurs in the data (the usual case) the regex is
    skipped entirely, so clean bodies cost a few `bytes.__contains__` scans.
    """

    __slots__ = ("alphabet", "gates", "hold", "pattern")

    def __init__(self, values: tuple[str, ...]) -> None:
        literals: set[bytes] = set()
        gates: set[bytes] = set()
        spellings: list[tuple[bytes, int]] = []
        for value in values:
            raw = value.encode()
            escaped = _escaped_everywhere(raw, value)
            literals |= base64_spellings(raw) | escaped
            gates |= _base64_cores(raw) | escaped | {_anchor(value)}
            spellings.append(_spelling_pattern(value))
        ordered = sorted(literals, key=lambda lit: (-len(lit), lit))
        branches = [re.escape(lit) for lit in ordered] + [pattern for pattern, _ in spellings]
        longest = max([len(lit) for lit in ordered] + [n for _, n in spellings])
        self.pattern = re.compile(b"|".join(branches))
        self.gates = tuple(sorted(gates, key=len))
        self.hold = max(longest - 1, 0)
        alphabet = set(b"".join(literals)) | set(b"".join(v.encode() for v in values))
        self.alphabet = bytes(sorted(alphabet | set(_HEX + b'%+\\/"ut')))

    def may_match(self, data: bytes) -> bool:
        return any(gate in data for gate in self.gates)


class SecretRedactor:
    """Replaces every spelling of a fixed set of secret values with `[REDACTED]`.

    The patterns are compiled the first time the redactor sees data, not
    when the policy loads: a bundle with thousands of credentials loads
    fast and keeps no regex for a credential that is never called.
    """

    __slots__ = ("_compiled", "_values")

    def __init__(self, secrets: Iterable[str]) -> None:
        self._values = tuple(sorted({value for value in secrets if value}))
        self._compiled: _Compiled | None = None

    @classmethod
    def empty(cls) -> SecretRedactor:
        """A redactor with nothing to redact."""
        return cls(())

    def __repr__(self) -> str:
        return "SecretRedactor([secret])"

    def _matcher(self) -> _Compiled | None:
        """The compiled patterns (None: nothing to redact), built once."""
        if not self._values:
            return None
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _Compiled(self._values)
        return compiled

    def redact(self, data: bytes) -> bytes:
        """`data` with every secret spelling replaced by `[REDACTED]`."""
        compiled = self._matcher()
        if compiled is None or not compiled.may_match(data):
            return data
        return compiled.pattern.sub(MARK, data)

    def redact_text(self, text: str) -> str:
        """`redact` for text such as a header value."""
        compiled = self._matcher()
        if compiled is None:
            return text
        data = text.encode("utf-8", "surrogateescape")
        if not compiled.may_match(data):
            return text
        return compiled.pattern.sub(MARK, data).decode("utf-8", "surrogateescape")

    def redact_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`redact_text` on every value, with one gate check for the whole list."""
        compiled = self._matcher()
        if compiled is None or not headers:
            return headers
        joined = "\n".join(value for _, value in headers).encode("utf-8", "surrogateescape")
        if not compiled.may_match(joined):
            return headers
        return [(name, self.redact_text(value)) for name, value in headers]

    def split_safe(self, data: bytes) -> tuple[bytes, bytes]:
        """(redacted output that is final, tail that could still start a secret).

        A match is only decided where every byte it could span is present,
        so no secret escapes because it straddled a chunk boundary.
        """
        compiled = self._matcher()
        if compiled is None:
            return data, b""
        window = data[-compiled.hold :] if compiled.hold else b""
        safe_end = len(data) - (len(window) - len(window.rstrip(compiled.alphabet)))
        if not compiled.may_match(data):
            return data[:safe_end], data[safe_end:]
        parts: list[bytes] = []
        position = 0
        for match in compiled.pattern.finditer(data):
            if match.start() >= safe_end:
                break
            parts += (data[position : match.start()], MARK)
            position = match.end()
        cut = max(position, safe_end)
        parts.append(data[position:cut])
        return b"".join(parts), data[cut:]

    def stream(self) -> StreamRedactor:
        """A stateful redactor for one response body."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts a body delivered in chunks; call `feed` per chunk, then `flush` once."""

    __slots__ = ("_pending", "_redactor")

    def __init__(self, redactor: SecretRedactor) -> None:
        self._redactor = redactor
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """Redacted bytes that are safe to send now (possibly empty)."""
        data = self._pending + chunk if self._pending else chunk
        output, self._pending = self._redactor.split_safe(data)
        return output

    def flush(self) -> bytes:
        """The redacted remainder at the end of the body."""
        data, self._pending = self._pending, b""
        return self._redactor.redact(data)
