"""Redact injected secret values from upstream responses.

An upstream that echoes the request (httpbin-style debugging endpoints, error
pages quoting the Authorization header, webhooks that reflect query strings)
must not hand the key back to the caller. Every secret value a credential
injects is searched for in the spellings that real encoders write when they
echo a header, a query or a body (`redaction_forms.py` builds them):

- raw, with each character that is not an ASCII letter or digit written in
  any of these forms, in any mix along the secret: raw; percent-encoded per
  UTF-8 byte (`%2F`/`%2f`) or twice (`%252F`); for a space also `+` and
  `%2B`; JSON-escaped (the short escapes `\\"` `\\\\` `\\/` `\\b` `\\f`
  `\\n` `\\r` `\\t`, or `\\uXXXX` in either hex case, surrogate pairs
  for characters beyond U+FFFF); a JavaScript or Python string escape
  (`\\'`, `\\xHH` per UTF-8 byte as in a `bytes` repr, or for a code point
  below U+0100); an HTML character reference: every HTML5
  named reference that decodes to it (`&amp;` `&AMP;` `&lt;` `&gt;` `&quot;`
  `&apos;` `&sol;` `&eacute;` …), decimal `&#39;` or hex `&#x27;`/`&#X27;` in
  either hex case, with up to 6 leading zeros, the `;` required; for a
  line break also CRLF (`\\r\\n`, `\\\\r\\\\n`, `%0D%0A`, `&#13;&#10;`);
  whitespace around the secret optional (an echo may trim it) when at
  least 8 characters are left;
- with every character (letters and digits too) escaped by one escaper:
  percent per byte, `\\u`, `&#N;` or `&#xH;` (all lower- or all
  upper-case hex);
- standard and URL-safe base64, padded and unpadded, and the part of a
  longer base64 text that encodes the secret at byte offset 0, 1 or 2 (so
  `base64("user:" + secret)` in an echoed Basic header is caught too),
  also with a line break (`\\r\\n` or `\\n`) between any two of its
  characters (MIME at 76, PEM at 64, any other width);
- in a response header name, in any letter case: the header is dropped
  (a name cannot hold `[REDACTED]`).

Not caught (documented in docs/runtime.md): spellings split over several
values that only the client joins (SSE deltas), other or stacked encodings
(quoted-printable, HTML over JSON escapes, `\\u` over percent …), letters
or digits escaped singly, case changes outside header names, and any
transformation by a hostile upstream.

The per-character spellings are compiled into one `re` alternation the first
time a credential's redactor is used (not at policy load); the long literal
and line-wrapped base64 alternations only the first time a body may hold one
of their forms. A response is first checked for a few substrings that every
match must contain, so a clean body costs a handful of fast substring scans.
`StreamRedactor` holds back only the bytes at the end of a chunk that could
still begin a match (`redaction_hold.py`: at most the longest pattern minus
one, never past a blank line or a line end no match can continue), so a
secret split across chunks is still caught while streams such as SSE are
not delayed past their event boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aivault_ops.runtime.response.redaction_forms import (
    anchor,
    base64_cores,
    base64_spellings,
    escaped_everywhere,
    spelling_piece,
    trimmed,
    wrapped_piece,
    wrapped_texts,
)
from aivault_ops.runtime.response.redaction_hold import HoldBack
from aivault_ops.secret import Secret

__all__ = ["MARK", "MARK_TEXT", "SecretRedactor", "StreamRedactor", "base64_spellings"]

MARK = b"[REDACTED]"
MARK_TEXT = MARK.decode()
_GATE_BYTES = 48
SPELLING, LITERAL, WRAPPED = "spelling", "literal", "wrapped"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


class _Gates:
    """Substring checks that decide whether a regex must run at all.

    Every match of the main pattern holds a secret's longest alphanumeric
    run, a base64 core, or (behind its marker `%`, `\\` or `&`) a fully
    escaped literal; line-wrapped base64 holds a core once line breaks are
    removed. A clean body costs a few `bytes.__contains__` scans (and, when
    it has line breaks, one `translate` pass). Markers are single bytes:
    `memchr` finds them about 15 times faster than a two-byte needle.
    """

    __slots__ = ("anchors", "cores", "escaped", "folded", "standard")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.anchors = _prefixes(anchor(value) for value in values)
        cores = {core for value in values for core in base64_cores(value.encode())}
        self.cores = _prefixes(cores)
        self.standard = _prefixes(core.translate(_TO_STANDARD) for core in cores)
        escaped = _prefixes(lit for value in values for lit in escaped_everywhere(value))
        self.escaped = tuple(
            (marker, tuple(lit for lit in sorted(escaped) if lit.startswith(marker)))
            for marker in (b"%", b"\\", b"&")
        )
        self.folded = tuple(sorted({g.lower() for g in (*self.anchors, *self.cores, *escaped)}))

    def kind(self, data: bytes) -> str | None:
        """Which regex `data` needs: `WRAPPED`, `LITERAL`, `SPELLING`, or None."""
        if b"\n" in data:
            view = data.translate(_TO_STANDARD, b"\r\n")
            for core in self.standard:
                if core in view:
                    return WRAPPED
        else:
            for core in self.cores:
                if core in data:
                    return LITERAL
        if self._escaped_in(data):
            return LITERAL
        for gate in self.anchors:
            if gate in data:
                return SPELLING
        return None

    def folded_in(self, lowered: bytes) -> bool:
        """Whether lower-cased text may hold a match, in the original case or folded
        (for header lists, whose names may have been lower-cased on the way)."""
        return any(gate in lowered for gate in self.folded)

    def _escaped_in(self, data: bytes) -> bool:
        for marker, group in self.escaped:
            if marker in data:
                for gate in group:
                    if gate in data:
                        return True
        return False


def _prefixes(gates: Iterable[bytes]) -> tuple[bytes, ...]:
    """Each gate cut to `_GATE_BYTES`: a prefix is in every match its gate is in,
    and a long needle makes every scan pay for its preprocessing."""
    return tuple(sorted({gate[:_GATE_BYTES] for gate in gates}))


class _Compiled:
    """What a redactor matches with, built from its secret values on first use.

    Three regexes, each an alternation: `spelling` (the per-character
    spellings, compiled at once), `literal` (also the base64 and fully
    escaped literals) and `wrapped` (also line-wrapped base64). The last
    two are long for a long secret (a PEM key) and are compiled the first
    time the gates say a body may hold one of their forms.
    """

    __slots__ = ("_branches", "_patterns", "gates", "spelling", "tail")

    def __init__(self, values: tuple[str, ...]) -> None:
        inner = tuple(sorted({trimmed(value) for value in values}))
        literals = {lit for v in inner for lit in base64_spellings(v.encode())}
        literals |= {lit for value in inner for lit in escaped_everywhere(value)}
        ordered = sorted(literals, key=lambda lit: (-len(lit), lit))
        spellings = [spelling_piece(value) for value in values]
        cores = {text for value in inner for text in wrapped_texts(value.encode())}
        wrapped = [wrapped_piece(text) for text in sorted(cores, key=lambda t: (-len(t), t))]
        self._branches = {
            LITERAL: [re.escape(lit) for lit in ordered],
            WRAPPED: [p for p, _ in wrapped],
            SPELLING: [p for p, _ in spellings],
        }
        self._patterns: dict[str, re.Pattern[bytes]] = {}
        self.spelling = re.compile(b"|".join(self._branches[SPELLING]))
        self.gates = _Gates(inner)
        lengths = [len(lit) for lit in ordered] + [n for _, n in spellings + wrapped]
        self.tail = HoldBack(values + inner, literals, cores, max(max(lengths) - 1, 0))

    def pattern_for(self, data: bytes) -> re.Pattern[bytes] | None:
        """The regex to run over `data`, or None when no match is possible."""
        kind = self.gates.kind(data)
        if kind is None or kind == SPELLING:
            return self.spelling if kind else None
        pattern = self._patterns.get(kind)
        if pattern is None:
            pattern = self._patterns[kind] = self._compile(kind)
        return pattern

    def _compile(self, kind: str) -> re.Pattern[bytes]:
        """Literals first (longest first), then wrapped base64 if asked, then spellings."""
        wrapped = self._branches[WRAPPED] if kind == WRAPPED else []
        branches = [*self._branches[LITERAL], *wrapped, *self._branches[SPELLING]]
        return re.compile(b"|".join(branches))


class SecretRedactor:
    """Replaces every spelling of a fixed set of secret values with `[REDACTED]`.

    The patterns are compiled the first time the redactor sees data, not
    when the policy loads: a bundle with thousands of credentials loads
    fast and keeps no regex for a credential that is never called.

    The values stay `Secret`s until then. Building the matcher is the one
    place on the response path that reveals them: the patterns are made of
    the plaintext and its encodings, and live inside this redactor only.
    """

    __slots__ = ("_compiled", "_lower", "_values")

    def __init__(self, secrets: Iterable[Secret]) -> None:
        unique = {secret for secret in secrets if secret.reveal()}
        self._values = tuple(sorted(unique, key=Secret.reveal_text))
        self._compiled: _Compiled | None = None
        self._lower: tuple[SecretRedactor, tuple[bytes, ...]] | None = None

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
            plain = tuple(secret.reveal_text() for secret in self._values)  # see the class doc
            compiled = self._compiled = _Compiled(plain)
        return compiled

    def redact(self, data: bytes) -> bytes:
        """`data` with every secret spelling replaced by `[REDACTED]`."""
        compiled = self._matcher()
        pattern = compiled.pattern_for(data) if compiled else None
        return pattern.sub(MARK, data) if pattern else data

    def redact_text(self, text: str) -> str:
        """`redact` for text such as a header value."""
        if not self._values:
            return text
        data = text.encode("utf-8", "surrogateescape")
        redacted = self.redact(data)
        return text if redacted == data else redacted.decode("utf-8", "surrogateescape")

    def reveals(self, text: str) -> bool:
        """Whether `text` holds a secret in any spelling."""
        compiled = self._matcher()
        data = text.encode("utf-8", "surrogateescape")
        pattern = compiled.pattern_for(data) if compiled else None
        return pattern is not None and pattern.search(data) is not None

    def _folded(self) -> tuple[SecretRedactor, tuple[bytes, ...]]:
        """The secrets in lower case, and their base64 cores in lower case."""
        if self._lower is None:
            plain = [secret.reveal_text() for secret in self._values]  # see the class doc
            cores = {core for value in plain for core in base64_cores(value.encode())}
            lowered = SecretRedactor(Secret(value.lower()) for value in plain)
            self._lower = lowered, tuple(sorted(core.lower() for core in cores))
        return self._lower

    def name_reveals(self, name: str) -> bool:
        """Whether a header name holds a secret, in any letter case.

        A name cannot be redacted (`[REDACTED]` is not a token), and servers
        and HTTP/2 lower-case names, so a name is also compared case-folded,
        base64 included (lower-cased base64 is still guessable).
        """
        if self.reveals(name):
            return True
        lowered, cores = self._folded()
        folded = name.lower()
        data = folded.encode("utf-8", "surrogateescape")
        return lowered.reveals(folded) or any(core in data for core in cores)

    def redact_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers whose name holds a secret dropped, the others' values redacted.

        Prevents an upstream that echoes a secret into a header name (or
        value) from handing it to the caller. One case-folded gate check
        covers the whole list.
        """
        compiled = self._matcher()
        if compiled is None or not headers:
            return headers
        text = "\0".join([f"{name}\0{value}" for name, value in headers]).lower()
        if not compiled.gates.folded_in(text.encode("utf-8", "surrogateescape")):
            return headers
        return [
            (name, self.redact_text(value))
            for name, value in headers
            if not self.name_reveals(name)
        ]

    def split_safe(self, data: bytes) -> tuple[bytes, bytes]:
        """(redacted output that is final, tail that could still start a secret).

        A match is only decided where every byte it could span is present,
        so no secret escapes because it straddled a chunk boundary.
        """
        compiled = self._matcher()
        if compiled is None:
            return data, b""
        safe_end = compiled.tail.safe_end(data)
        pattern = compiled.pattern_for(data)
        if pattern is None:
            return data[:safe_end], data[safe_end:]
        parts: list[bytes] = []
        position = 0
        for match in pattern.finditer(data):
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
