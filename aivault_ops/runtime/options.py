"""What a runtime process is configured with: the `serve` options `build_process` reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aivault_ops.runtime.observe.audit_settings import AuditSettings


@dataclass(frozen=True)
class RuntimeOptions:
    """The runtime's options, named after their `serve` flags (checked by `build_process`)."""

    bundle_dir: Path | None  # this, or bundle_source
    trust: Sequence[str]  # 'ed25519:<base64>' or a file holding one
    poll_interval: float | None  # seconds between polls (None: 2 for a dir, 10 for a registry)
    header_timeout: float  # seconds; these four are the caller-side connection limits
    keepalive_timeout: float
    body_timeout: float
    shutdown_grace: float
    upstream_body_timeout: float
    identity: Path | None = None  # None: sops' own sources (SOPS_AGE_KEY_FILE, …)
    state_dir: Path | None = None  # None: $XDG_STATE_HOME/aivault-ops or ~/.local/state/…
    max_connections: int | None = None  # None: from the free file descriptors
    dev_resolve: list[str] = field(default_factory=list)  # HOST=IP:PORT, DEVELOPMENT ONLY
    dev_ca_cert: Path | None = None  # DEVELOPMENT ONLY
    audit: AuditSettings = field(default_factory=AuditSettings)  # rotation, retention, floors
    bundle_source: str | None = None  # oci://HOST/REPO:TAG, polled instead of a bundle dir
    plain_http: bool = False  # plain HTTP to a loopback registry
    rate_limit_store: str | None = None  # redis://…: buckets shared by runtimes
    rate_limit_fallback: str = "closed"  # Redis unreachable: "closed" (503) or "local"
    rate_limit_store_password_file: Path | None = None
    rate_limit_store_ca_cert: Path | None = None  # CA for rediss://
    upstream_max_connections: int | None = None  # None: 256, or fewer with few descriptors
    upstream_max_per_host: int | None = None  # None: half of upstream_max_connections
    upstream_queue_timeout: float | None = None  # None: 5 s (http1_pool)
