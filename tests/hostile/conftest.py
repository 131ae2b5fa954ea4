"""Hostile-input suites share the runtime fixtures: a recording TLS upstream, bundles, runtimes."""

from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream

__all__ = ["_session_upstream", "bundle_dir", "factory", "start_runtime", "upstream"]
