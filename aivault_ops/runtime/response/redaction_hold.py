"""How much of a chunk's end the stream redactor must hold back.

A streamed body is redacted chunk by chunk; bytes at the end of a chunk that
could begin a secret are held until the next chunk decides them. Holding too
little lets a secret that straddles two chunks through; holding too much
delays a stream (an SSE event, an NDJSON line) past its end. `HoldBack`
holds the shortest tail that could still be the start of a match.
"""

from __future__ import annotations

from aivault_ops.runtime.response.redaction_forms import entity_letters

_ESCAPES = b"0123456789abcdefABCDEF%+\\/\"'ut&#;xX"
_STARTERS = b"%+\\&"
_BREAKERS = (b"\n\n", b"\n\r\n")
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_LINE_BREAKS = b"\r\n"
_WRAPPED = _BASE64 + _LINE_BREAKS


class HoldBack:
    """Finds where the tail that could still begin a match starts.

    Two kinds of tail: one that could begin any spelling (bytes a spelling
    can hold, beginning with a byte a spelling can begin with, no blank line
    unless a secret has one), and one that could begin a line-wrapped base64
    core (base64 characters and single line breaks that, joined, are the
    start of a core). Both lie within the last `hold` bytes.
    """

    __slots__ = ("alphabet", "breakers", "cores", "firsts", "hold", "longest", "non_starters")

    def __init__(
        self, values: tuple[str, ...], literals: set[bytes], cores: set[bytes], hold: int
    ) -> None:
        raw = [value.encode() for value in values]
        self.hold = hold
        self.alphabet = _alphabet(raw, literals)
        self.breakers = tuple(b for b in _BREAKERS if all(b not in value for value in raw))
        starters = {lit[0] for lit in literals} | {value[0] for value in raw} | set(_STARTERS)
        self.non_starters = bytes(sorted(set(range(256)) - starters))
        self.cores = tuple(sorted(cores))
        self.firsts = frozenset(core[0] for core in cores)
        self.longest = max((len(core) for core in cores), default=0)

    def safe_end(self, data: bytes) -> int:
        """The length of `data` that no later byte can turn into part of a match."""
        window = data[-self.hold :] if self.hold else b""
        end = len(data) - len(self._spelling_tail(window))
        if b"\n" in window or b"\r" in window:
            end = min(end, len(data) - self._wrapped_tail(window))
        return end

    def _spelling_tail(self, window: bytes) -> bytes:
        tail = window[len(window.rstrip(self.alphabet)) :]
        for breaker in self.breakers:
            found = tail.rfind(breaker)
            if found >= 0:
                tail = tail[found + len(breaker) :]
        return tail.lstrip(self.non_starters)

    def _wrapped_tail(self, window: bytes) -> int:
        """Length of the longest tail that, line breaks removed, begins a base64 core."""
        tail = window[len(window.rstrip(_WRAPPED)) :]
        if not tail or tail.endswith(_BREAKERS):
            return 0
        found = max(tail.rfind(b"\n\n"), tail.rfind(b"\n\r\n"))
        if found >= 0:
            tail = tail[tail.index(b"\n", found + 1) + 1 :]
        joined = tail.translate(None, _LINE_BREAKS)
        if len(joined) == len(tail):
            return 0
        for start in range(max(0, len(joined) - self.longest), len(joined)):
            if joined[start] in self.firsts and self._begins_core(joined[start:]):
                return _span(tail, len(joined) - start)
        return 0

    def _begins_core(self, text: bytes) -> bool:
        return any(core.startswith(text) for core in self.cores)


def _span(tail: bytes, count: int) -> int:
    """Length of the shortest end of `tail` holding `count` bytes that are not line breaks."""
    position = len(tail)
    while count:
        position -= 1
        count -= tail[position] not in _LINE_BREAKS
    return len(tail) - position


def _alphabet(raw: list[bytes], literals: set[bytes]) -> bytes:
    """Every byte a spelling can hold; a chunk's tail outside it cannot begin one."""
    found = set(b"".join(literals)) | set(_ESCAPES)
    for value in raw:
        found |= set(value) | set(entity_letters(value.decode()))
        if b"\n" in value:
            found.add(ord("\r"))
    return bytes(sorted(found))
