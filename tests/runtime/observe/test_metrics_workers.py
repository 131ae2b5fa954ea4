"""`serve --workers 2` (forked workers): `/metrics` sums every worker, whichever answers.

The requests are sent until both workers have counted some (each worker
writes its own file in `<state>/metrics`), so a scrape answered by either
worker alone could not show the total.
"""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from support.bundles import TOKEN, BundleFactory
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import RecordingUpstream

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BATCH = 8
MAX_REQUESTS = 400
SCRAPES = 6
ALLOWED = (("capability", "my-api/users"), ("decision", "allow"))


def scrape(runtime: RuntimeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with httpx.Client(timeout=10) as client:
        response = client.get(runtime.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_by_process(metrics_dir: Path) -> dict[str, float]:
    """The allowed requests each process counted, from its own file."""
    counts = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        for metric in MultiProcessCollector.merge([str(path)]):
            if metric.name == "aivault_requests":
                counts[path.stem] = sum(sample.value for sample in metric.samples)
    return {process: count for process, count in counts.items() if count}


def drive_until_both_workers_counted(runtime: RuntimeProcess, metrics_dir: Path) -> int:
    """Send batches of concurrent requests until two processes have counted some."""
    sent = 0
    with ThreadPoolExecutor(BATCH) as pool:
        while len(requests_by_process(metrics_dir)) < 2 and sent < MAX_REQUESTS:
            codes = list(pool.map(lambda _: call_at(runtime), range(BATCH)))
            assert codes == [200] * BATCH
            sent += BATCH
    assert len(requests_by_process(metrics_dir)) == 2, "one worker took every connection"
    return sent


def call_at(runtime: RuntimeProcess) -> int:
    """One allowed request on a new connection (either worker may take it)."""
    with httpx.Client(base_url=runtime.url, headers=AUTH, timeout=10) as client:
        return client.get("/v/my-api/v1/users").status_code


def test_every_scrape_shows_the_requests_and_reloads_of_all_workers(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    factory.publish(bundle_dir, 1)
    stale = tmp_path / "state" / "metrics"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"left over from an earlier run")
    runtime = start_runtime("--workers", "2")
    metrics_dir = tmp_path / "state" / "metrics"
    assert stat.S_IMODE(metrics_dir.stat().st_mode) == 0o700
    assert not (metrics_dir / "counter_1.db").exists()
    sent = drive_until_both_workers_counted(runtime, metrics_dir)
    for _ in range(SCRAPES):
        samples = scrape(runtime)
        assert samples[("aivault_requests_total", ALLOWED)] == sent
        assert samples[("aivault_upstream_latency_seconds_count", ())] == sent
        assert samples[("aivault_reloads_total", (("result", "ok"),))] == 1  # the load at start
        assert samples[("aivault_bundle_serial", ())] == 1
        assert samples[("aivault_audit_available", ())] == 1
        assert samples[("aivault_audit_held_lines", ())] == 0
    factory.publish(bundle_dir, 2)
    wait_until(lambda: scrape(runtime)[("aivault_bundle_serial", ())] == 2, what="serial 2")
    samples = scrape(runtime)
    assert samples[("aivault_reloads_total", (("result", "ok"),))] == 3  # and once per worker
    assert samples[("aivault_requests_total", ALLOWED)] == sent
    assert runtime.stop() == 0
    assert sorted(metrics_dir.glob("gauge_live*")) == [], "exited workers' gauges are dropped"


def test_a_restart_starts_the_counts_again(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    first = start_runtime("--workers", "2")
    assert call_at(first) == 200
    assert scrape(first)[("aivault_requests_total", ALLOWED)] == 1
    assert first.stop() == 0
    again = start_runtime("--workers", "2")
    assert ("aivault_requests_total", ALLOWED) not in scrape(again)
    assert scrape(again)[("aivault_reloads_total", (("result", "ok"),))] == 1
