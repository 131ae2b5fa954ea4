"""Read at most a limit from a file without allocating the limit.

`handle.read(limit + 1)` allocates `limit + 1` bytes before it reads one: a
64 MiB buffer for every bundle a runtime loads, whatever the bundle's size.
`read_at_most` reads in pieces, so memory follows the file, and still stops
one byte past the limit, which is how a caller tells "too large".
"""

from __future__ import annotations

from typing import BinaryIO, Final

PIECE_BYTES: Final = 64 * 1024


def read_at_most(handle: BinaryIO, limit: int) -> bytes:
    """The file's bytes from the current position, at most `limit + 1` of them: a
    result longer than `limit` means the file is larger than the limit."""
    pieces: list[bytes] = []
    wanted = limit + 1
    while wanted > 0:
        piece = handle.read(min(PIECE_BYTES, wanted))
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)
