"""Bundles into policy: load and verify, watch the directory, keep the state
(serial floor, active policy)."""
