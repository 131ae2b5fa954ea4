"""`read_at_most`: memory follows the file, not the limit; one byte past the limit tells."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest

from aivault_ops import bounded_read
from aivault_ops.bounded_read import read_at_most
from aivault_ops.bundle.source import read_bundle_file


@pytest.mark.parametrize(("size", "expected"), [(0, 0), (9, 9), (10, 10), (11, 11), (500, 11)])
def test_it_stops_one_byte_past_the_limit(size: int, expected: int) -> None:
    data = bytes(range(256)) * 2
    assert read_at_most(io.BytesIO(data[:size]), 10) == data[:expected]


def test_pieces_join_in_order_across_short_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_read, "PIECE_BYTES", 3)
    read, write = os.pipe()
    os.write(write, b"abcdefghij")
    os.close(write)
    with os.fdopen(read, "rb", buffering=0) as pipe:
        assert read_at_most(pipe, 7) == b"abcdefgh"


def test_a_small_bundle_under_a_large_limit_allocates_about_its_size(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle-1.tar.gz"
    bundle.write_bytes(b"x" * 4096)
    tracemalloc.start()
    try:
        data = read_bundle_file(bundle, max_bytes=64 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data) == 4096
    assert peak < 256 * 1024  # `handle.read(limit + 1)` allocated the whole 64 MiB
