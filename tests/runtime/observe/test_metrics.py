"""Prometheus exposition: parses with the reference parser, counts what happened."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.observe.audit import HEALTHY, AuditHealth
from aivault_ops.runtime.observe.metrics import (
    LATENCY_BUCKETS,
    Metrics,
    _fresh_private_directory,
)

AUDIT_FAMILIES = (
    "aivault_audit_available",
    "aivault_audit_held_lines",
    "aivault_audit_failures",
    "aivault_audit_dropped_lines",
)


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_empty_metrics_parse_and_show_no_serial() -> None:
    parsed = families(Metrics().render(None, HEALTHY))
    assert parsed["aivault_bundle_serial"] == [("aivault_bundle_serial", {}, -1.0)]
    assert parsed["aivault_requests"] == []


def test_requests_reloads_latency_and_serial() -> None:
    metrics = Metrics()
    metrics.request("my-api/users", "allow")
    metrics.request("my-api/users", "allow")
    metrics.request("(none)", "deny")
    metrics.reload("ok")
    metrics.reload("error")
    metrics.upstream_latency(0.02)
    metrics.upstream_latency(7.0)
    parsed = families(metrics.render(12, HEALTHY))
    assert sorted(parsed["aivault_requests"], key=str) == [
        ("aivault_requests_total", {"capability": "(none)", "decision": "deny"}, 1.0),
        ("aivault_requests_total", {"capability": "my-api/users", "decision": "allow"}, 2.0),
    ]
    assert sorted(parsed["aivault_reloads"], key=str) == [
        ("aivault_reloads_total", {"result": "error"}, 1.0),
        ("aivault_reloads_total", {"result": "ok"}, 1.0),
    ]
    assert parsed["aivault_bundle_serial"] == [("aivault_bundle_serial", {}, 12.0)]
    buckets = {
        s[1]["le"]: s[2]
        for s in parsed["aivault_upstream_latency_seconds"]
        if s[0].endswith("_bucket")
    }
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert (buckets["0.01"], buckets["0.025"], buckets["5.0"], buckets["10.0"]) == (0, 1, 1, 2)
    assert buckets["+Inf"] == 2


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.request('we"ird\\name\n', "deny")
    [sample] = families(metrics.render(1, HEALTHY))["aivault_requests"]
    assert sample[1]["capability"] == 'we"ird\\name\n'


def test_latency_buckets_are_cumulative_with_inclusive_bounds() -> None:
    metrics = Metrics()
    for seconds in (0.003, 0.01, 0.2, 100.0):
        metrics.upstream_latency(seconds)
    text = metrics.render(None, HEALTHY)
    bucket = 'aivault_upstream_latency_seconds_bucket{le="%s"} %d'
    for bound, count in (("0.005", 1), ("0.01", 2), ("0.025", 2), ("0.25", 3), ("30.0", 3)):
        assert bucket % (bound, count) in text
    assert 'aivault_upstream_latency_seconds_bucket{le="+Inf"} 4' in text
    assert "aivault_upstream_latency_seconds_count 4" in text


def test_audit_health_is_shown_as_of_each_render() -> None:
    metrics = Metrics()
    parsed = families(metrics.render(3, AuditHealth("disk full", 2, 3, 1)))
    shown = {name: parsed[name][0][2] for name in AUDIT_FAMILIES}
    assert shown == {
        "aivault_audit_available": 0,
        "aivault_audit_held_lines": 2,
        "aivault_audit_failures": 3,
        "aivault_audit_dropped_lines": 1,
    }
    parsed = families(metrics.render(3, AuditHealth(None, 0, 5, 1)))
    shown = {name: parsed[name][0][2] for name in AUDIT_FAMILIES}
    assert shown == {
        "aivault_audit_available": 1,
        "aivault_audit_held_lines": 0,
        "aivault_audit_failures": 5,
        "aivault_audit_dropped_lines": 1,
    }


def test_the_workers_metrics_directory_starts_empty_and_private(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir(mode=0o755)
    (directory / "counter_1.db").write_bytes(b"an earlier run")
    _fresh_private_directory(directory)
    assert list(directory.iterdir()) == []
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_symlinked_metrics_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep").write_text("not ours")
    (tmp_path / "metrics").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AivaultError, match="is a symbolic link"):
        _fresh_private_directory(tmp_path / "metrics")
    assert (tmp_path / "elsewhere" / "keep").exists()
