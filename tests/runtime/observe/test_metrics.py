"""Prometheus exposition: parses with the reference parser, counts what happened."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from aivault_ops.runtime.observe.audit import HEALTHY
from aivault_ops.runtime.observe.metrics import LATENCY_BUCKETS, Metrics


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
