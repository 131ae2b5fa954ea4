"""Reading wrk's report: throughput, latency, and what kind of errors it counted."""

from __future__ import annotations

import pytest

from benchmarks.common import parse_wrk

_REPORT = """Running 20s test @ http://127.0.0.1:8080/
  2 threads and 256 connections
  Latency Distribution
     50%    4.10ms
     75%    6.00ms
     90%    8.00ms
     99%    1.20s
  42137 requests in 20.00s, 9.1MB read
{errors}Requests/sec:   2106.85
Transfer/sec:    465.2KB
"""


def test_a_clean_run_has_no_errors() -> None:
    result = parse_wrk(_REPORT.format(errors=""))
    assert (result.requests, result.errors, result.error_kinds) == (42137, 0, "")
    assert result.rps == pytest.approx(2106.85)
    assert (result.p50_ms, result.p99_ms) == (pytest.approx(4.1), pytest.approx(1200.0))


def test_socket_errors_and_non_2xx_are_counted_and_named() -> None:
    errors = (
        "  Socket errors: connect 0, read 2, write 0, timeout 13\n  Non-2xx or 3xx responses: 4\n"
    )
    result = parse_wrk(_REPORT.format(errors=errors))
    assert result.errors == 19
    assert result.error_kinds == "read 2, timeout 13, non-2xx 4"
