"""The `/status` document and the runtime's readiness, from one `LoadRecord`.

`ready`: a policy is active and not expired; `degraded`: the active policy
has expired, or the audit log cannot be written (invokes are refused, fail
closed), or it warns (free space below the warning floor, maintenance
failing: invokes still pass); `not_ready`: no policy was ever loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aivault_ops.runtime.bundles.state import LoadRecord
from aivault_ops.runtime.observe.audit import AuditHealth
from aivault_ops.runtime.observe.health import ComponentHealth

READY: Final = "ready"
DEGRADED: Final = "degraded"
NOT_READY: Final = "not_ready"


def rfc3339(moment: datetime | None) -> str | None:
    """UTC RFC 3339 with milliseconds, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def readiness(record: LoadRecord, now: datetime) -> str:
    """`ready`, `degraded` (active policy expired) or `not_ready` (none loaded)."""
    policy = record.policy
    if policy is None:
        return NOT_READY
    if policy.expires_at is not None and now >= policy.expires_at:
        return DEGRADED
    return READY


def status_document(
    record: LoadRecord,
    now: datetime,
    audit: AuditHealth,
    components: Mapping[str, ComponentHealth] | None = None,
) -> dict[str, Any]:
    """What `GET /status` returns: no secret, no token, no path outside the state.

    A failing audit log turns a ready runtime `degraded` and is the `lastError`
    (it refuses every invoke until the log can be written again); an audit
    warning turns it `degraded` too, before the log must refuse. So does a
    degraded component (a bundle source that cannot be polled, an
    unreachable shared rate-limit store); each shows under its own name.
    """
    policy = record.policy
    state = readiness(record, now)
    parts = components or {}
    degraded_parts = any(p.degraded for p in parts.values())
    if state == READY and (not audit.ok or audit.warning is not None or degraded_parts):
        state = DEGRADED
    return {
        "state": state,
        "serial": policy.serial if policy else None,
        "revision": policy.revision if policy else None,
        "environment": policy.environment if policy else None,
        "keyid": policy.keyid if policy else None,
        "expiresAt": rfc3339(policy.expires_at) if policy else None,
        "loadedAt": rfc3339(record.loaded_at),
        "lastAttempted": rfc3339(record.last_attempted),
        "lastError": audit.error or record.last_error or audit.warning,
        "audit": {
            "ok": audit.ok,
            "error": audit.error,
            "heldLines": audit.held_lines,
            "failures": audit.failures,
            "droppedLines": audit.dropped_lines,
            "warning": audit.warning,
            "diskBytes": audit.disk_bytes,
            "freeBytes": audit.free_bytes,
        },
        "counts": policy.counts() if policy else {},
        "problems": policy.problems() if policy else [],
        **{name: dict(part.detail) for name, part in parts.items()},
    }
