"""`maxResponseBodyBytes`: a 502 before the caller got anything, a cut stream after.

The limit counts the bytes received from the upstream and, for a compressed
body, the decoded bytes as well, so a small compression bomb is stopped too.
"""

from __future__ import annotations

import pytest
from support.response_runtime import (
    Served,
    audit_lines,
    envelope,
    passthrough,
    read_cut,
    refusal,
    runtime_fixture,
    upstream_fixture,
)

from aivault_ops.runtime.response.body import Meter
from aivault_ops.runtime.upstream.client import UpstreamFailure

LIMIT = 4096
TOO_LARGE = f"the upstream response exceeds the limit of {LIMIT} bytes"


upstream = upstream_fixture()
runtime = runtime_fixture("limits", {"maxResponseBodyBytes": LIMIT})


def _last_audit(runtime: Served) -> tuple[str, str | None, int, int]:
    line = audit_lines(runtime.root)[-1]
    return line["decision"], line["error"], line["status"], line["bytes"]


def test_a_body_at_the_limit_passes_whole(runtime: Served) -> None:
    response = passthrough(runtime, f"bytes?size={LIMIT}&chunks=2")
    assert (response.status_code, response.content) == (200, b"a" * LIMIT)
    assert envelope(runtime, f"bytes?size={LIMIT}&chunks=2").json()["body"] == "a" * LIMIT


def test_a_declared_length_over_the_limit_is_a_502_before_reading(runtime: Served) -> None:
    response = passthrough(runtime, f"bytes?size={LIMIT + 1}&whole=1")
    assert refusal(response, 502, "E-RESPONSE-TOO-LARGE") == TOO_LARGE
    assert _last_audit(runtime) == ("error", "E-RESPONSE-TOO-LARGE", 502, 0)


def test_an_envelope_over_the_limit_is_a_502(runtime: Served) -> None:
    response = envelope(runtime, f"bytes?size={3 * LIMIT}&chunks=6")
    assert refusal(response, 502, "E-RESPONSE-TOO-LARGE") == TOO_LARGE
    assert _last_audit(runtime) == ("error", "E-RESPONSE-TOO-LARGE", 502, 0)


def test_a_stream_over_the_limit_is_cut_and_audited(runtime: Served) -> None:
    status, received = read_cut(runtime, f"bytes?size={3 * LIMIT}&chunks=6")
    assert status == 200
    assert len(received) <= LIMIT
    assert received == b"a" * len(received)
    assert _last_audit(runtime) == ("error", "E-RESPONSE-TOO-LARGE", 200, len(received))


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_compression_bomb_is_stopped_at_the_limit(runtime: Served, encoding: str) -> None:
    response = envelope(runtime, f"bomb?enc={encoding}&mib=2")
    assert refusal(response, 502, "E-RESPONSE-TOO-LARGE") == TOO_LARGE
    status, received = read_cut(runtime, f"bomb?enc={encoding}&mib=2")
    assert status == 200
    assert len(received) <= LIMIT
    assert _last_audit(runtime)[:3] == ("error", "E-RESPONSE-TOO-LARGE", 200)


def test_meter_counts_received_and_decoded_bytes_separately() -> None:
    meter = Meter(10, 20)
    meter.on_received(10)
    meter.on_decoded(20)
    with pytest.raises(UpstreamFailure) as caught:
        meter.on_decoded(1)
    assert (caught.value.code, caught.value.message) == (
        "E-RESPONSE-TOO-LARGE",
        "the upstream response exceeds the limit of 20 bytes",
    )
    with pytest.raises(UpstreamFailure):
        meter.on_received(1)


def test_no_limit_means_no_cap_on_a_stream() -> None:
    meter = Meter(None, None)
    meter.on_received(1 << 40)
    meter.on_decoded(1 << 40)
