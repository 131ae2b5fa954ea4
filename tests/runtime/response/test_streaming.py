"""Passthrough streams: the first chunk is not held back, secrets split across chunks
are still redacted, and a compressed stream is decoded as it arrives.

No timing: the upstream sends its first part, then waits for `release`,
which the test sets only after the caller has seen that first part.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.bundles import CANARY
from support.response_runtime import AUTH, Served, runtime_fixture, upstream_fixture
from support.scripted_upstream import ScriptedUpstream

upstream = upstream_fixture()
runtime = runtime_fixture("streaming", {})


@pytest.fixture
def held(upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    """The upstream with its `release` event cleared; always released at the end."""
    upstream.release.clear()
    yield upstream
    upstream.release.set()


def _stream_in_two(runtime: Served, path: str, upstream: ScriptedUpstream, first: bytes) -> bytes:
    """Read until `first` arrived while the upstream still waits; release; the rest."""
    url = f"{runtime.url}/v/my-api/v1/users/{path}"
    with httpx.stream("GET", url, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        chunks = response.iter_raw()
        seen = b""
        while len(seen) < len(first):
            seen += next(chunks)
        assert seen == first
        assert not upstream.release.is_set(), "the upstream finished before the first chunk"
        upstream.release.set()
        rest = b"".join(chunks)
    assert CANARY.encode() not in seen + rest
    return rest


def test_the_first_chunk_arrives_before_the_upstream_finishes(
    runtime: Served, held: ScriptedUpstream
) -> None:
    assert _stream_in_two(runtime, "held", held, b"chunk-1\n") == b"chunk-2\n"


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_secret_split_across_two_chunks_is_redacted(
    runtime: Served, held: ScriptedUpstream, encoding: str
) -> None:
    rest = _stream_in_two(runtime, f"split?enc={encoding}", held, b"data: first\n\n")
    assert rest == b"[REDACTED]\n\n"
