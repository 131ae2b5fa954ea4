"""Prometheus text metrics: requests, upstream latency, reloads, active serial.

A minimal, honest exposition (text format 0.0.4): counters and one
histogram kept in memory by the one event loop (reload counters from the
reload thread under a lock). Label values are capability names, decisions
and results only, never paths, tokens or secrets.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate
from typing import Final

from aivault_ops.runtime.observe.audit import AuditHealth

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


class Metrics:
    """In-memory counters rendered as Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.reloads: Counter[str] = Counter()
        self._bucket_counts = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0

    def request(self, capability: str, decision: str) -> None:
        """Count one request by capability label and decision."""
        self.requests[(capability, decision)] += 1

    def upstream_latency(self, seconds: float) -> None:
        """Observe the time to the upstream's response headers (counted in its own
        bucket; `render` makes the counts cumulative)."""
        index = bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(LATENCY_BUCKETS):
            self._bucket_counts[index] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def reload(self, result: str) -> None:
        """Count one bundle load attempt by result (`ok` or `error`)."""
        with self._lock:
            self.reloads[result] += 1

    def render(self, active_serial: int | None, audit: AuditHealth) -> str:
        """The exposition text."""
        lines = [
            "# HELP aivault_requests_total Requests by capability and decision.",
            "# TYPE aivault_requests_total counter",
        ]
        for (capability, decision), count in sorted(self.requests.items()):
            labels = _labels([("capability", capability), ("decision", decision)])
            lines.append(f"aivault_requests_total{labels} {count}")
        lines += self._latency_lines() + self._reload_lines() + _audit_lines(audit)
        lines += [
            "# HELP aivault_bundle_serial Serial of the active bundle (-1 when none).",
            "# TYPE aivault_bundle_serial gauge",
            f"aivault_bundle_serial {active_serial if active_serial is not None else -1}",
        ]
        return "\n".join(lines) + "\n"

    def _latency_lines(self) -> list[str]:
        name = "aivault_upstream_latency_seconds"
        lines = [f"# HELP {name} Time to upstream response headers.", f"# TYPE {name} histogram"]
        cumulative = accumulate(self._bucket_counts)
        for bound, count in zip(LATENCY_BUCKETS, cumulative, strict=True):
            lines.append(f'{name}_bucket{{le="{bound}"}} {count}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self._latency_count}')
        lines.append(f"{name}_sum {self._latency_sum}")
        lines.append(f"{name}_count {self._latency_count}")
        return lines

    def _reload_lines(self) -> list[str]:
        name = "aivault_reloads_total"
        lines = [f"# HELP {name} Bundle load attempts by result.", f"# TYPE {name} counter"]
        with self._lock:
            for result, count in sorted(self.reloads.items()):
                lines.append(f"{name}{_labels([('result', result)])} {count}")
        return lines


def _audit_lines(audit: AuditHealth) -> list[str]:
    """The audit log's health: writable or not, failures, lines held and dropped, and
    its disk: bytes taken, bytes free, a warning before the free-space floor."""
    families = (
        ("aivault_audit_available", "gauge", "1 when the audit log can be written.", int(audit.ok)),
        ("aivault_audit_failures_total", "counter", "Failed audit log writes or checks.",
         audit.failures),
        ("aivault_audit_held_lines", "gauge", "Audit lines waiting to be written.",
         audit.held_lines),
        ("aivault_audit_dropped_lines_total", "counter",
         "Audit lines of refused requests dropped when too many were held.", audit.dropped_lines),
        ("aivault_audit_warning", "gauge",
         "1 when audit space is below the warning floor or maintenance fails.",
         int(audit.warning is not None)),
        ("aivault_audit_disk_bytes", "gauge", "Bytes the audit log files take.", audit.disk_bytes),
        ("aivault_audit_free_bytes", "gauge", "Bytes free on the audit log's filesystem.",
         audit.free_bytes),
    )  # fmt: skip
    lines: list[str] = []
    for name, kind, text, value in families:
        if value is not None:  # disk figures not known: no sample
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return lines
