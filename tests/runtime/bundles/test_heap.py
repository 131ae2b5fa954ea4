"""Returning freed heap pages to the OS after a load."""

from __future__ import annotations

import ctypes
import platform

import pytest

from aivault_ops.runtime.bundles import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_returns_freed_pages() -> None:
    assert heap.release_free_memory() is True


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTrim:
        def __init__(self, name: object) -> None:
            self.name = name

    monkeypatch.setattr(ctypes, "CDLL", NoTrim)
    heap._malloc_trim.cache_clear()
    try:
        assert heap.release_free_memory() is False
    finally:
        heap._malloc_trim.cache_clear()


def test_a_periodic_trim_runs_only_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[float] = []
    now = [100.0]
    monkeypatch.setattr(heap, "release_free_memory", lambda: trims.append(now[0]) or True)
    trim = heap.PeriodicTrim(every_s=10.0, clock=lambda: now[0])
    for moment in (101.0, 109.9, 110.0, 115.0, 119.9, 120.0):
        now[0] = moment
        trim.tick()
    assert trims == [110.0, 120.0]
