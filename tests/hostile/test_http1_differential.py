"""Differential test: the upstream client's response parser against h11.

Hypothesis generates response byte streams (valid and subtly invalid:
framing, header casing and values, chunk sizes and extensions, trailers,
CL/TE combinations, interim answers, bytes after the answer, garbage),
splits them at random points and feeds the pieces to `ResponseParser` (no
sockets) and to h11 as a client that sent a GET. Both must agree on status,
headers (as a list, casing kept), body, keep-alive and whether bytes came
after the answer; or both must refuse.

Where we are deliberately stricter than h11, the generator tags the stream
and the oracle expects a refusal; each tag says why (RFC 9110/9112). There
is no case where we accept what h11 refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aivault_ops.runtime.upstream.http1_parser import (
    MAX_HEAD_BYTES,
    ProtocolViolation,
    ResponseParser,
    UpstreamClosed,
)

# Deliberate divergences: h11 accepts these, the client refuses them.
STRICTER = {
    # RFC 9112 §6.3: several identical Content-Length values MAY be merged (h11 does);
    # a repeated length is a classic smuggling tell, so llhttp and we refuse it.
    "cl-repeated",
    # A Content-Length beyond 2**64 - 1 is refused; h11 takes up to 20 digits (it then
    # waits for the body, so it refuses too, except where there is none: 204, 304).
    "cl-overflow",
    # RFC 9112 §6.3: CL with TE "ought to be handled as an error"; h11 lets TE win.
    "cl-te",
    # RFC 9112 §2.2: a recipient MAY take a bare LF as a line end (h11 does); we do not.
    "bare-lf",
    # RFC 9112 §5.2: a user agent MUST replace obs-fold by SP (h11 does); a folded line
    # is how header injection hides, so we refuse the whole answer instead.
    "obs-fold",
    # RFC 9110 §5.5: field values are VCHAR, obs-text, SP, HTAB; h11 lets other controls
    # (\x01, \x7f …) through, llhttp and we refuse them.
    "ctl-in-value",
    # RFC 9112 §2.3: only HTTP/1.x; h11 takes any digit.digit (2.0, 0.9, 1.2).
    "version",
    # RFC 9110 §15: status codes are 100-599; h11 takes 600-999.
    "status-range",
    # RFC 9112 §4: the reason phrase is HTAB, SP, VCHAR, obs-text; h11 refuses only NUL
    # and line-break whitespace in it, we refuse every other control character too.
    "reason-ctl",
    # RFC 9112 §7.1: no whitespace after a chunk size (h11 allows it before CRLF or ";").
    "chunk-size-ws",
    # RFC 9112 §7.1.1: chunk-ext is token [= token / quoted-string]; h11 takes any text.
    "chunk-ext",
    # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
    "te-http10",
    # RFC 9110 §6.5.1: trailers must not carry framing fields (h11 keeps them).
    "framing-trailer",
    # A head over MAX_HEAD_BYTES (h11's own limit depends on how the bytes were split).
    "head-cap",
}

CRLF = b"\r\n"


@dataclass
class Wire:
    """A generated response stream and the STRICTER tags it carries."""

    data: bytearray = field(default_factory=bytearray)
    tags: set[str] = field(default_factory=set)
    mutated: bool = False

    def line(self, text: bytes, eol: bytes = CRLF) -> None:
        self.data += text + eol


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    trailing: bool | bytes  # ours: whether bytes came after; h11's: those bytes


REFUSED = "refused"
Outcome = Answer | str

NAMES = [b"X-Test", b"x-test", b"X-TEST", b"Content-Type", b"Link", b"Connection", b"X-Dup"]
BAD_NAMES = [b"x test", b"", b"(x)", b"x\x01y"]
VALUES = [b"a", b"a b", b"\xff\xfe", b"a\tb", b"  lead", b"trail \t", b"", b"close", b"keep-alive"]
CTL_VALUES = [b"a\x01b", b"a\x7fb", b"\x1b[0m"]
BAD_VALUES = [b"a\x00b", b"a\rb"]
REASONS = [b"OK", b"", b"Some Reason", b"R\x01x", b"R\xffx", b"R\tx"]


@st.composite
def eol(draw: st.DrawFn, wire: Wire) -> bytes:
    if draw(st.integers(0, 30)) == 0:
        wire.tags.add("bare-lf")
        return b"\n"
    return CRLF


@st.composite
def status_line(draw: st.DrawFn, wire: Wire) -> tuple[bytes, int]:
    version = draw(st.sampled_from([b"1.1"] * 8 + [b"1.0", b"2.0", b"0.9", b"1.2"]))
    if version in (b"2.0", b"0.9", b"1.2"):
        wire.tags.add("version")
    status = draw(st.sampled_from([200] * 6 + [201, 204, 304, 404, 500, 101, 99, 600, 999]))
    if status >= 600:
        wire.tags.add("status-range")
    prefix = b"\r\n" if draw(st.integers(0, 40)) == 0 else b""
    reason = draw(st.sampled_from(REASONS))
    if b"\x01" in reason:
        wire.tags.add("reason-ctl")
    wire.line(prefix + b"HTTP/%s %03d %s" % (version, status, reason), draw(eol(wire)))
    return version, status


@st.composite
def header(draw: st.DrawFn, wire: Wire) -> None:
    kind = draw(st.sampled_from(["ok"] * 12 + ["ctl", "bad-value", "bad-name", "fold", "sp"]))
    name, value = draw(st.sampled_from(NAMES)), draw(st.sampled_from(VALUES))
    if kind == "ctl":
        value = draw(st.sampled_from(CTL_VALUES))
        wire.tags.add("ctl-in-value")
    elif kind == "bad-value":
        value = draw(st.sampled_from(BAD_VALUES))
    elif kind == "bad-name":
        name = draw(st.sampled_from(BAD_NAMES))
    elif kind == "sp":
        name += b" "  # whitespace before the colon: refused by both
    wire.line(name + b":" + draw(st.sampled_from([b" ", b"", b"\t"])) + value, draw(eol(wire)))
    if kind == "fold":
        wire.line(b" folded", draw(eol(wire)))
        wire.tags.add("obs-fold")


@st.composite
def chunk_line(draw: st.DrawFn, wire: Wire, size: int) -> None:
    digits = draw(st.sampled_from([b"%x", b"%X", b"00%x"])) % size
    ext = draw(st.sampled_from([b""] * 6 + [b";a=b", b';a="q s"', b";a", b";a=b;c=d", b";a b"]))
    if ext == b";a b":
        wire.tags.add("chunk-ext")
    if draw(st.integers(0, 20)) == 0:
        digits += b" "
        wire.tags.add("chunk-size-ws")
    wire.line(digits + ext, draw(eol(wire)))


@st.composite
def chunked_body(draw: st.DrawFn, wire: Wire, body: bytes) -> None:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    for piece in (piece for piece in pieces if piece):
        draw(chunk_line(wire, len(piece)))
        if draw(st.integers(0, 30)) == 0:
            wire.data += piece + b"X"  # data longer than its size: refused by both
        else:
            wire.line(piece, draw(eol(wire)))
    draw(chunk_line(wire, 0))
    trailer = draw(st.sampled_from([b""] * 4 + [b"x-t: 1", b"Content-Length: 5", b"x t: 1"]))
    if trailer:
        if trailer.startswith(b"Content-Length"):
            wire.tags.add("framing-trailer")
        wire.line(trailer, draw(eol(wire)))
    wire.line(b"", draw(eol(wire)))


FRAMINGS = ["cl"] * 4 + ["chunked"] * 4 + ["close"] * 2 + [
    "cl-short", "cl-long", "cl-dup", "cl-dup-diff", "cl-list", "cl-plus", "cl-neg",
    "cl-huge", "cl-te", "te-case", "te-gzip", "te-gzip-chunked", "te-twice", "te-list",
]  # fmt: skip


@st.composite
def framing_headers(draw: st.DrawFn, wire: Wire, framing: str, size: int) -> None:
    lines = {
        "cl": [b"Content-Length: %d" % size],
        "cl-short": [b"Content-Length: %d" % (size + 3)],
        "cl-long": [b"content-length: %d" % max(size - 2, 0)],
        "cl-dup": [b"Content-Length: %d" % size] * 2,
        "cl-dup-diff": [b"Content-Length: %d" % size, b"Content-Length: %d" % (size + 1)],
        "cl-list": [b"Content-Length: %d, %d" % (size, size)],
        "cl-plus": [b"Content-Length: +%d" % size],
        "cl-neg": [b"Content-Length: -1"],
        "cl-huge": [b"Content-Length: 99999999999999999999"],
        "cl-te": draw(st.permutations([b"Content-Length: 3", b"Transfer-Encoding: chunked"])),
        "chunked": [b"Transfer-Encoding: chunked"],
        "te-case": [b"transfer-encoding: Chunked "],
        "te-gzip": [b"Transfer-Encoding: gzip"],
        "te-gzip-chunked": [b"Transfer-Encoding: gzip, chunked"],
        "te-twice": [b"Transfer-Encoding: chunked"] * 2,
        "te-list": [b"Transfer-Encoding: chunked, chunked"],
        "close": [],
    }[framing]
    if framing == "cl-huge":
        wire.tags.add("cl-overflow")
    if framing in ("cl-dup", "cl-list"):
        wire.tags.add("cl-repeated")
    if framing == "cl-te":
        wire.tags.add("cl-te")
    for text in lines:
        wire.line(text, draw(eol(wire)))


TRAILING = [b""] * 6 + [b"junk", CRLF, b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx"]


@st.composite
def wires(draw: st.DrawFn) -> Wire:
    wire = Wire()
    for _ in range(draw(st.integers(0, 2) if draw(st.booleans()) else st.just(0))):
        wire.line(b"HTTP/1.1 %d Interim" % draw(st.sampled_from([100, 102, 103])))
        wire.line(b"link: </a>")
        wire.line(b"")
    version, status = draw(status_line(wire))
    framing = draw(st.sampled_from(FRAMINGS))
    body = draw(st.binary(max_size=40))
    chunked = framing in ("chunked", "te-case", "te-gzip-chunked", "te-twice", "te-list", "cl-te")
    for _ in range(draw(st.integers(0, 4))):
        draw(header(wire))
    if draw(st.integers(0, 60)) == 0:
        wire.line(b"x-big: " + b"p" * (MAX_HEAD_BYTES + 10))
        wire.tags.add("head-cap")
    draw(framing_headers(wire, framing, len(body)))
    if chunked and version == b"1.0":
        wire.tags.add("te-http10")
    wire.line(b"", draw(eol(wire)))
    head_tags = set(wire.tags)
    if chunked:
        draw(chunked_body(wire, body))
    else:
        wire.data += body
    if status in (204, 304):
        wire.tags = head_tags  # no body: what follows the head is bytes after the answer
    wire.data += draw(st.sampled_from(TRAILING))
    if draw(st.integers(0, 3)) == 0:
        draw(mutation(wire))
    return wire


NOISE = [b"\r", b"\n", b" ", b"\t", b"\x00", b":", b";", b"0", b"a", b"\x7f", b"\xff", b"H", b""]


@st.composite
def mutation(draw: st.DrawFn, wire: Wire) -> None:
    """Insert, replace or delete one byte anywhere: tags no longer tell what is valid,
    so `check` only asks that we never accept what h11 refuses or read it otherwise."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(wire.data)))
        cut = draw(st.integers(0, 1))
        wire.data[at : at + cut] = draw(st.sampled_from(NOISE))
    wire.mutated = True


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [piece for piece in pieces if piece]


def ours(pieces: list[bytes]) -> Outcome:
    parser = ResponseParser()
    body = bytearray()
    try:
        for piece in pieces:
            parser.feed(piece)
            while parser.chunks:
                body += parser.take()
        parser.feed_eof()
    except (ProtocolViolation, UpstreamClosed):
        return REFUSED
    headers = [(k.encode("ascii"), v.encode("utf-8", "surrogateescape")) for k, v in parser.headers]
    return Answer(parser.status, headers, bytes(body), parser.keep_alive, parser.trailing)


def theirs(pieces: list[bytes]) -> Outcome:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "api.example.com")]))
    connection.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body = bytearray()
    try:
        for index, piece in enumerate([*pieces, b""]):
            connection.receive_data(piece)
            while (event := connection.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    rest = connection.trailing_data[0] + b"".join(pieces[index + 1 :])
                    closed = connection.trailing_data[1]  # a body that ended at the close
                    keep_alive = connection.their_state is h11.DONE and not closed
                    return _answer(head, bytes(body), keep_alive, rest)
    except h11.RemoteProtocolError:
        return REFUSED
    return REFUSED


def _answer(head: h11.Response, body: bytes, keep_alive: bool, rest: bytes) -> Answer:
    return Answer(head.status_code, head.headers.raw_items(), body, keep_alive, rest)


def _comparable(answer: Answer) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    # h11 lower-cases the Transfer-Encoding value; we keep it as sent (it is dropped
    # before the caller anyway): compare it case-insensitively.
    headers = [
        (name, value.lower() if name.lower() == b"transfer-encoding" else value)
        for name, value in answer.headers
    ]
    return answer.status, headers, answer.body, answer.keep_alive


def check(wire: Wire, cuts: list[int]) -> None:
    data = bytes(wire.data)
    pieces = split(data, cuts)
    mine, reference = ours(pieces), theirs(pieces)
    if wire.mutated and mine == REFUSED:
        return
    if (wire.tags and not wire.mutated) or reference == REFUSED:
        assert mine == REFUSED, (data, wire.tags, reference)
        return
    assert isinstance(mine, Answer), (data, reference)
    assert isinstance(reference, Answer)
    assert _comparable(mine) == _comparable(reference), data
    # Bytes after the answer: any but CR/LF must be seen (the connection is then
    # closed); llhttp skips CR/LF right after an answer, in the same read.
    assert isinstance(reference.trailing, bytes)
    if reference.trailing.strip(b"\r\n"):
        assert mine.trailing, data
    if mine.trailing:
        assert reference.trailing, data


CUTS = st.lists(st.integers(0, 1 << 20), max_size=8)
COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=200, derandomize=True, **COMMON)  # type: ignore[arg-type]
@given(wire=wires(), cuts=CUTS)
def test_the_parser_agrees_with_h11(wire: Wire, cuts: list[int]) -> None:
    check(wire, cuts)


@pytest.mark.slow
@settings(max_examples=5000, **COMMON)  # type: ignore[arg-type]
@given(wire=wires(), cuts=CUTS)
def test_the_parser_agrees_with_h11_at_length(wire: Wire, cuts: list[int]) -> None:
    check(wire, cuts)
