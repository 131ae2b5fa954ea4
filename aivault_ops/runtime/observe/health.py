"""Parts of the runtime that report into `/status` besides the policy and the audit log.

A bundle source (an OCI registry) and a shared rate-limit store (Redis)
each register a report; `/status` shows each under its name, and any part
that is degraded turns a ready runtime `degraded` (it still serves).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ComponentHealth:
    """One part's report: degraded or not, and what `/status` shows (never a secret)."""

    degraded: bool
    detail: Mapping[str, Any]


class Components:
    """The registered reports, read on every `/status`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[str, Callable[[], ComponentHealth]] = {}

    def register(self, name: str, report: Callable[[], ComponentHealth]) -> None:
        """Show `report()` under `name` in `/status`."""
        with self._lock:
            self._reports[name] = report

    def snapshot(self) -> dict[str, ComponentHealth]:
        """Every part's current report."""
        with self._lock:
            reports = dict(self._reports)
        return {name: report() for name, report in sorted(reports.items())}
