"""`GET /metrics` of a real runtime, parsed by the Prometheus reference text parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.bundles import BundleFactory
from support.response_runtime import (
    Served,
    passthrough,
    refusal,
    runtime_fixture,
    upstream_fixture,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


upstream = upstream_fixture()
runtime = runtime_fixture("metrics", {}, scope="function")


def scrape(runtime: Served) -> tuple[dict[str, str], Samples]:
    """Family types by name, and every sample by (name, sorted labels)."""
    response = httpx.get(runtime.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def _drive(runtime: Served, factory: BundleFactory) -> None:
    assert passthrough(runtime, "json").status_code == 200
    assert httpx.get(runtime.url + "/v/my-api/v1/users/json", timeout=10).status_code == 401
    refusal(passthrough(runtime, "encoded?enc=compress"), 502, "E-RESPONSE-ENCODING")
    bundles = runtime.root / "bundles"
    factory.publish(bundles, 2, limits={"responseBlocklist": ["$[-1]"]})
    runtime.runtime.wait_error("bundle-2")
    factory.publish(bundles, 3)
    runtime.runtime.wait_serial(3)


def test_metrics_cover_requests_latency_reloads_and_serial(
    runtime: Served, factory: BundleFactory
) -> None:
    _drive(runtime, factory)
    types, samples = scrape(runtime)
    assert types == {
        "aivault_requests": "counter",
        "aivault_upstream_latency_seconds": "histogram",
        "aivault_reloads": "counter",
        "aivault_bundle_serial": "gauge",
        "aivault_audit_available": "gauge",
        "aivault_audit_failures": "counter",
        "aivault_audit_held_lines": "gauge",
        "aivault_audit_dropped_lines": "counter",
        "aivault_audit_warning": "gauge",
        "aivault_audit_disk_bytes": "gauge",
        "aivault_audit_free_bytes": "gauge",
    }
    requests = {
        labels: value
        for (name, labels), value in samples.items()
        if name.startswith("aivault_requests")
    }
    assert requests == {
        (("capability", "my-api/users"), ("decision", "allow")): 1,
        (("capability", "(none)"), ("decision", "deny")): 1,
        (("capability", "my-api/users"), ("decision", "error")): 1,
    }
    assert samples[("aivault_reloads_total", (("result", "ok"),))] == 2
    assert samples[("aivault_reloads_total", (("result", "error"),))] == 1
    assert samples[("aivault_bundle_serial", ())] == 3
    assert samples[("aivault_audit_available", ())] == 1
    assert samples[("aivault_audit_failures_total", ())] == 0
    assert samples[("aivault_audit_warning", ())] == 0
    assert samples[("aivault_audit_disk_bytes", ())] > 0  # the lines of the three requests
    assert samples[("aivault_audit_free_bytes", ())] > 0
    _assert_histogram(samples, count=2)


def _assert_histogram(samples: Samples, *, count: int) -> None:
    name = "aivault_upstream_latency_seconds"
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert buckets[-1] == (float("inf"), count)
    assert samples[(f"{name}_count", ())] == count
    assert samples[(f"{name}_sum", ())] > 0
