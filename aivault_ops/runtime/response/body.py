"""The upstream response body on its way to the caller: decoded, capped, filtered, redacted.

Order for every body: raw bytes are counted against `maxResponseBodyBytes`,
decoded (`content_decoding`; the caller never gets compressed bytes, and
`Content-Encoding` is dropped from the headers), the decoded bytes are
counted against the same limit (or `DEFAULT_DECODED_CAP` for a body held
whole without a limit), then, for a capability with a `responseBlocklist`,
the whole body is parsed and filtered, and last the injected secrets are
redacted. Every failure is an `UpstreamFailure` (502) and nothing
unfiltered is passed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aivault_ops.runtime.model import PreparedCall
from aivault_ops.runtime.response.blocklist import Blocklist, redact_json_body
from aivault_ops.runtime.response.decoding import Decoder, decoder_for, encoding_failure, layers
from aivault_ops.runtime.upstream.client import UpstreamFailure, UpstreamResponse, classify_error

DEFAULT_DECODED_CAP: Final = 32 * 1024 * 1024


def too_large(limit: int) -> UpstreamFailure:
    """502 `E-RESPONSE-TOO-LARGE`."""
    return UpstreamFailure(
        502, "E-RESPONSE-TOO-LARGE", f"the upstream response exceeds the limit of {limit} bytes"
    )


class Meter:
    """Counts received and decoded bytes; `E-RESPONSE-TOO-LARGE` past either cap."""

    __slots__ = ("decoded", "decoded_cap", "limit", "received")

    def __init__(self, limit: int | None, decoded_cap: int | None) -> None:
        self.limit = limit
        self.decoded_cap = decoded_cap
        self.received = 0
        self.decoded = 0

    def on_received(self, size: int) -> None:
        """Count raw upstream bytes against `maxResponseBodyBytes`."""
        self.received += size
        if self.limit is not None and self.received > self.limit:
            raise too_large(self.limit)

    def on_decoded(self, size: int) -> None:
        """Count decoded bytes against the decoded cap (a compression bomb stops here)."""
        self.decoded += size
        if self.decoded_cap is not None and self.decoded > self.decoded_cap:
            raise too_large(self.decoded_cap)


def decoded_body(response: UpstreamResponse, meter: Meter) -> AsyncIterator[bytes]:
    """The body, decoded from its `Content-Encoding`, in metered pieces.

    An encoding that cannot be decoded is refused here, before any byte is read.
    """
    _check_transfer_coding(response.headers.get("transfer-encoding"))
    return _decode(response, decoder_for(response.headers.get("content-encoding")), meter)


def _check_transfer_coding(value: str | None) -> None:
    """Refuse a compressing transfer-coding (`Transfer-Encoding: gzip, chunked`).

    The HTTP client undoes only `chunked`; any other coding would hand the
    redactor compressed bytes, so such a body is never passed on.
    """
    codings = [coding for coding in layers(value) if coding != "chunked"]
    if codings:
        raise encoding_failure(f"transfer-encoding {codings[0][:40]!r} cannot be decoded")


async def _decode(
    response: UpstreamResponse, decoder: Decoder, meter: Meter
) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_raw():
        meter.on_received(len(chunk))
        for piece in decoder.feed(chunk):
            meter.on_decoded(len(piece))
            yield piece
    decoder.finish()


def redacted_stream(
    response: UpstreamResponse, call: PreparedCall, *, held_whole: bool
) -> AsyncIterator[bytes]:
    """The decoded body with injected secrets redacted, as it arrives.

    The stream redactor holds back only a possible secret prefix, so a secret
    split across upstream chunks is still caught. `held_whole` bodies get the
    default decoded cap when the capability sets no limit. Refuses an
    undecodable encoding at once (before the caller gets a status line).
    """
    return _redact(decoded_body(response, _meter(call, held_whole=held_whole)), call)


async def _redact(pieces: AsyncIterator[bytes], call: PreparedCall) -> AsyncIterator[bytes]:
    redactor = call.body_redactor()
    async for piece in pieces:
        out = redactor.feed(piece)
        if out:
            yield out
    tail = redactor.flush()
    if tail:
        yield tail


def _meter(call: PreparedCall, *, held_whole: bool) -> Meter:
    limit = call.max_response_body_bytes
    return Meter(limit, DEFAULT_DECODED_CAP if limit is None and held_whole else limit)


async def filtered_body(
    response: UpstreamResponse, call: PreparedCall, blocklist: Blocklist
) -> bytes:
    """The whole body through the `responseBlocklist`, then secret redaction.

    Prevents a blocklisted value from reaching the caller by any path: the
    body is decoded before parsing, and a body that is not JSON is refused
    (502 `E-RESPONSE-NOT-JSON`) instead of passed on unfiltered.
    """
    meter = _meter(call, held_whole=True)
    body = b"".join([piece async for piece in decoded_body(response, meter)])
    filtered = redact_json_body(body, response.headers.get("content-type"), blocklist)
    return call.redactor.redact(filtered)


def declared_length(response: UpstreamResponse) -> int | None:
    """The response's `Content-Length` (None: absent, or not a plain number). Read once
    per response; the checks below take it as an argument."""
    text = response.headers.get("content-length", "")
    return int(text) if text.isdigit() else None


async def whole_body(response: UpstreamResponse, call: PreparedCall, length: int | None) -> bytes:
    """The complete body ready for the caller (filtered if the capability says so);
    `length` is its `declared_length`.

    Closes the response; transport errors become their `UpstreamFailure`.
    """
    try:
        if call.response_blocklist:
            return await filtered_body(response, call, call.response_blocklist)
        if _plain_within(response, length, _meter(call, held_whole=True)):
            return call.redactor.redact(await response.aread())
        return b"".join([p async for p in redacted_stream(response, call, held_whole=True)])
    except OSError as failure:
        raise classify_error(failure) from None
    finally:
        await response.aclose()


def _plain_within(response: UpstreamResponse, length: int | None, meter: Meter) -> bool:
    """An identity body whose declared length is within the meter's caps: read in one
    step (the client reads exactly that many bytes, so nothing needs counting)."""
    if response.headers.get("transfer-encoding") or layers(
        response.headers.get("content-encoding")
    ):
        return False
    if length is None:
        return False
    meter.on_received(length)
    meter.on_decoded(length)
    return True


def should_buffer(
    call: PreparedCall, response: UpstreamResponse, length: int | None, below: int
) -> bool:
    """Passthrough: hold the body whole when a blocklist must parse it, or when it is
    small, identity-encoded and of known length (`declared_length`; one write is cheaper)."""
    if call.response_blocklist:
        return True
    plain = not layers(response.headers.get("content-encoding"))
    return plain and length is not None and length <= below
