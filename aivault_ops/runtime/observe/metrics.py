"""Prometheus metrics: requests, upstream latency, reloads, active serial, audit health.

prometheus-client keeps the values and writes the text format (0.0.4).
Label values are capability names, decisions and results only, never
paths, tokens or secrets.

One process: each `Metrics` has its own registry. Several workers (`serve
--workers N`, `Metrics.for_workers`): prometheus-client's multiprocess
mode, so `/metrics` shows the sum over every worker, whichever worker
answers. Each process writes its values to its own mmap'd files in a
private directory of the state dir, and a scrape reads all of them:
counters and the histogram add up over every worker, exited ones too; the
gauges are taken over the live workers: `aivault_bundle_serial` and
`aivault_audit_available` show the lowest (a worker still on an older
bundle, or one that cannot write its audit log, shows), and
`aivault_audit_held_lines` the sum. A worker's gauges live in its files,
so it rewrites them after each request and reload it counts (only what
changed), not just when it answers a scrape.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.observe.audit import HEALTHY, AuditHealth

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Snapshot = Callable[[], tuple[int | None, AuditHealth]]  # the active serial, the audit health

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series (as before)


class Metrics:
    """The runtime's metrics; `render` is the exposition text."""

    def __init__(self, shared: tuple[Path, Snapshot] | None = None) -> None:
        """One process; `shared` (from `for_workers`): its directory and its gauges' source."""
        self._shared = shared
        own = None if shared else CollectorRegistry()
        self._requests = Counter(
            "aivault_requests", "Requests by capability and decision.",
            ("capability", "decision"), registry=own,
        )  # fmt: skip
        self._latency = Histogram(
            "aivault_upstream_latency_seconds", "Time to upstream response headers.",
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self._reloads = Counter(
            "aivault_reloads", "Bundle load attempts by result.", ("result",), registry=own
        )
        self._audit_available = Gauge(
            "aivault_audit_available", "1 when the audit log can be written.",
            multiprocess_mode="livemin", registry=own,
        )  # fmt: skip
        self._audit_failures = Counter(
            "aivault_audit_failures", "Failed audit log writes or checks.", registry=own
        )
        self._audit_held = Gauge(
            "aivault_audit_held_lines", "Audit lines waiting to be written.",
            multiprocess_mode="livesum", registry=own,
        )  # fmt: skip
        self._audit_dropped = Counter(
            "aivault_audit_dropped_lines",
            "Audit lines of refused requests dropped when too many were held.", registry=own,
        )  # fmt: skip
        self._audit_warning = Gauge(
            "aivault_audit_warning",
            "1 when audit space is below the warning floor or maintenance fails.",
            multiprocess_mode="livemax", registry=own,
        )  # fmt: skip
        self._audit_disk = Gauge(
            "aivault_audit_disk_bytes", "Bytes the audit log files take (NaN: not known yet).",
            multiprocess_mode="livemax", registry=own,
        )  # fmt: skip
        self._audit_free = Gauge(
            "aivault_audit_free_bytes",
            "Bytes free on the audit log's filesystem (NaN: not known yet).",
            multiprocess_mode="livemin", registry=own,
        )  # fmt: skip
        self._serial = Gauge(
            "aivault_bundle_serial", "Serial of the active bundle (-1 when none).",
            multiprocess_mode="livemin", registry=own,
        )  # fmt: skip
        self._exposition = own if own is not None else CollectorRegistry()
        if shared:
            MultiProcessCollector(self._exposition, path=str(shared[0]))  # type: ignore[no-untyped-call]
        self._request_counts: dict[tuple[str, str], Counter] = {}  # labels() costs ~1 µs
        self._lock = threading.Lock()
        self._shown: tuple[int | None, AuditHealth] | None = None
        self._counted = HEALTHY

    @classmethod
    def for_workers(cls, directory: Path, snapshot: Snapshot) -> Metrics:
        """Metrics summed over the worker processes this one will fork.

        `directory` is emptied (files of an earlier run would count again) and
        made private (0700). Switches prometheus-client to multiprocess mode
        for this whole process, before any metric exists: the library picks
        its value class from PROMETHEUS_MULTIPROC_DIR when first imported,
        which may have happened already, so the class is picked again here.
        `snapshot` gives this process's gauges.
        """
        _fresh_private_directory(directory)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        return cls((directory, snapshot))

    def request(self, capability: str, decision: str) -> None:
        """Count one request by capability label and decision."""
        child = self._request_counts.get((capability, decision))
        if child is None:
            child = self._request_counts[capability, decision] = self._requests.labels(
                capability, decision
            )
        child.inc()
        if self._shared:
            self._publish(*self._shared[1]())

    def upstream_latency(self, seconds: float) -> None:
        """Observe the time to the upstream's response headers."""
        self._latency.observe(seconds)

    def reload(self, result: str) -> None:
        """Count one bundle load attempt by result (`ok` or `error`)."""
        self._reloads.labels(result).inc()
        if self._shared:
            self._publish(*self._shared[1]())

    def render(self, active_serial: int | None, audit: AuditHealth) -> str:
        """The exposition text (this process's gauges set from the arguments first)."""
        self._publish(active_serial, audit)
        return generate_latest(self._exposition).decode()

    def worker_started(self) -> None:
        """In a forked worker, before it serves: write its gauges to its own files (the
        library starts every value of a forked process from zero)."""
        if self._shared:
            with self._lock:
                self._shown = None
            self._publish(*self._shared[1]())

    def process_gone(self, pid: int) -> None:
        """Drop the gauges of process `pid`: a worker that exited, or the parent once its
        workers run (it serves nothing). Its counts stay in the sums."""
        if self._shared:
            mark_process_dead(pid, str(self._shared[0]))  # type: ignore[no-untyped-call]

    def _publish(self, serial: int | None, audit: AuditHealth) -> None:
        """Set this process's gauges; the audit counters grow by what is new since last."""
        with self._lock:
            if self._shown == (serial, audit):
                return
            self._serial.set(-1 if serial is None else serial)
            self._audit_available.set(int(audit.ok))
            self._audit_held.set(audit.held_lines)
            self._audit_warning.set(int(audit.warning is not None))
            self._audit_disk.set(_known(audit.disk_bytes))
            self._audit_free.set(_known(audit.free_bytes))
            if audit.failures > self._counted.failures:
                self._audit_failures.inc(audit.failures - self._counted.failures)
            if audit.dropped_lines > self._counted.dropped_lines:
                self._audit_dropped.inc(audit.dropped_lines - self._counted.dropped_lines)
            self._counted = audit
            self._shown = (serial, audit)


def _known(value: int | None) -> float:
    return float("nan") if value is None else value


def _fresh_private_directory(directory: Path) -> None:
    try:
        if directory.is_symlink():
            raise AivaultError(f"{directory}: is a symbolic link, not the metrics directory")
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(mode=0o700)
        directory.chmod(0o700)
    except OSError as error:
        raise AivaultError(
            f"{directory}: cannot prepare the metrics directory: {error.strerror}"
        ) from None
