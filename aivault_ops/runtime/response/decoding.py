"""Streaming `Content-Encoding` decoders for upstream response bodies.

The runtime asks upstreams for `accept-encoding: identity`, but an upstream
may compress anyway. The secret redactor and the `responseBlocklist` can
only see plain bytes, so a compressed body is decoded here before anything
else looks at it; a body that cannot be decoded is refused, never passed
on. Security property: no compressed byte ever reaches the caller, so a
secret cannot hide from redaction inside gzip, deflate or brotli data.

Decoders work incrementally: each `feed` yields decoded pieces of about
`PIECE` bytes at most (`finish` only checks the body did not stop
mid-stream), so a small compressed "bomb" never needs more memory than
one piece; the caller counts the pieces against its size cap.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Final, Protocol

from aivault_ops.runtime.upstream.client import UpstreamFailure

PIECE: Final = 64 * 1024
MAX_LAYERS: Final = 3
_GZIP: Final = 31
_ZLIB: Final = 15
_RAW_DEFLATE: Final = -15


def encoding_failure(message: str) -> UpstreamFailure:
    """502 `E-RESPONSE-ENCODING`: the body cannot be decoded, so it is not passed on."""
    return UpstreamFailure(502, "E-RESPONSE-ENCODING", message)


def _corrupt(encoding: str) -> UpstreamFailure:
    return encoding_failure(f"the upstream response is not valid {encoding} data")


class Decoder(Protocol):
    """One decoding layer: `feed` per received chunk, then `finish` once."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces (each about `PIECE` bytes at most) for `data`."""
        ...

    def finish(self) -> None:
        """At the end of the body: `E-RESPONSE-ENCODING` if it stopped mid-stream."""
        ...


class Identity:
    """No encoding: bytes pass unchanged."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """`data` itself, when not empty."""
        if data:
            yield data

    def finish(self) -> None:
        """Nothing is held back."""


class ZlibDecoder:
    """gzip (members may repeat) or deflate (zlib-wrapped, or raw as some servers send)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._wbits: int | None = _GZIP if encoding == "gzip" else None
        self._decoder: Any = None
        self._head = b""
        self._fed = False

    def _start(self, data: bytes) -> bytes:
        """Pick the zlib or raw form of deflate from the first two bytes."""
        if self._wbits is None:
            data, self._head = self._head + data, b""
            if len(data) < 2:
                self._head = data
                return b""
            zlib_header = data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            self._wbits = _ZLIB if zlib_header else _RAW_DEFLATE
        self._decoder = zlib.decompressobj(self._wbits)
        return data

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode `data` in bounded pieces."""
        self._fed = self._fed or bool(data)
        while data:
            if self._decoder is None or self._decoder.eof:
                if self._decoder is not None and self._wbits != _GZIP:
                    raise _corrupt(self._encoding)
                data = self._start(data)
                if not data:
                    return
            yield from self._drain(data)
            data = self._decoder.unused_data

    def _drain(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                piece = self._decoder.decompress(data, PIECE)
                if piece:
                    yield piece
                data = self._decoder.unconsumed_tail
                if self._decoder.eof or (not data and len(piece) < PIECE):
                    return
        except zlib.error:
            raise _corrupt(self._encoding) from None

    def finish(self) -> None:
        """Refuse a body that ends inside a compressed stream."""
        if self._fed and (self._decoder is None or not self._decoder.eof):
            raise _corrupt(self._encoding)


class BrotliDecoder:
    """`br`, decoded with bounded output buffers (needs `brotli` >= 1.2, which has
    `output_buffer_limit`; older versions are treated as missing).

    Pending output is pulled with empty input until a call yields nothing.
    """

    def __init__(self, brotli: Any) -> None:
        self._brotli = brotli
        self._decoder = brotli.Decompressor()
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode `data` in bounded pieces."""
        if not data:
            return
        self._fed = True
        try:
            piece = self._decoder.process(data, output_buffer_limit=PIECE)
            while piece:
                yield piece
                if self._decoder.is_finished():
                    return
                piece = self._decoder.process(b"", output_buffer_limit=PIECE)
        except self._brotli.error:
            raise _corrupt("br") from None

    def finish(self) -> None:
        """Refuse a body that ends inside the brotli stream."""
        if self._fed and not self._decoder.is_finished():
            raise _corrupt("br")


def _brotli_decoder() -> BrotliDecoder:
    try:
        brotli = importlib.import_module("brotli")
    except ImportError:
        brotli = None
    if brotli is None or not hasattr(brotli.Decompressor, "can_accept_more_data"):
        raise encoding_failure(
            "the upstream response is brotli-encoded and this runtime cannot decode brotli"
        )
    return BrotliDecoder(brotli)


def _layer(name: str) -> Decoder:
    if name in ("gzip", "x-gzip"):
        return ZlibDecoder("gzip")
    if name == "deflate":
        return ZlibDecoder("deflate")
    if name == "br":
        return _brotli_decoder()
    raise encoding_failure(f"content-encoding {name[:40]!r} cannot be decoded")


class Chain:
    """Several layers, undone last-applied first (`Content-Encoding: deflate, gzip`)."""

    def __init__(self, layers: Iterable[Decoder]) -> None:
        self._layers = tuple(layers)

    def _through(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self._layers):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self._layers[index].feed(piece))

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode `data` through every layer."""
        yield from self._through(0, [data])

    def finish(self) -> None:
        """Finish each layer (no layer holds decoded bytes back, only input)."""
        for layer in self._layers:
            layer.finish()


def layers(content_encoding: str | None) -> list[str]:
    """The encodings applied, in order, lower-cased, without `identity`."""
    names = [part.strip().lower() for part in (content_encoding or "").split(",")]
    return [name for name in names if name not in ("", "identity")]


def decoder_for(content_encoding: str | None) -> Decoder:
    """The decoder for a `Content-Encoding` value; `E-RESPONSE-ENCODING` for unknown ones."""
    names = layers(content_encoding)
    if not names:
        return Identity()
    if len(names) > MAX_LAYERS:
        raise encoding_failure("too many content-encoding layers")
    return Chain(_layer(name) for name in reversed(names))
