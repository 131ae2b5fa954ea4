"""Runtime fixtures for the check-versus-runtime agreement test."""

from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream

__all__ = ["_session_upstream", "bundle_dir", "factory", "start_runtime", "upstream"]
