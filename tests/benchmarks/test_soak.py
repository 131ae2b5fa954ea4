"""The soak's slopes (least squares over minute-long windows, past the warm-up) and its
RSS sampler."""

from __future__ import annotations

import os
import time

import pytest

from benchmarks.soak import Settings, SoakResult, Window
from benchmarks.soak_load import RssSampler


def soak(floors: list[float], ends: list[float] | None = None) -> SoakResult:
    result = SoakResult(Settings.of(len(floors), smoke=False, slow=False), 68.0, 17)
    result.windows = [
        Window(60.0 * (i + 1), 1.0, 1.0, 1, 0, 0, end, floor, 44, 1, [])
        for i, (floor, end) in enumerate(zip(floors, ends or floors, strict=True))
    ]
    return result


def test_the_warm_up_window_is_left_out() -> None:
    assert soak([60.0, 70.0, 70.0, 70.0]).rss_slope == pytest.approx(0.0)
    assert soak([70.0, 70.1, 70.2, 70.3]).rss_slope == pytest.approx(0.1)


def test_the_second_half_shows_whether_a_creep_settles() -> None:
    settling = soak([70.0, 70.1, 70.2, 70.3, 70.3, 70.3, 70.3, 70.3])
    assert settling.rss_slope > 0.02
    assert settling.rss_slope_second_half == pytest.approx(0.0)


def test_a_window_end_caught_in_a_transient_does_not_make_a_slope() -> None:
    # The last window's end sample landed in a compression of a closed audit file.
    result = soak([70.0, 70.0, 70.0, 70.0, 70.0], ends=[70.0, 70.0, 70.0, 70.0, 70.8])
    assert result.rss_end_slope > 0.1
    assert result.rss_slope == pytest.approx(0.0)


def test_memory_kept_raises_every_floor_after_it() -> None:
    result = soak([70.0, 70.1, 70.2, 70.3], ends=[70.5, 70.1, 70.9, 70.3])
    assert result.rss_slope == pytest.approx(0.1)


def test_the_sampler_reads_a_live_process_and_hands_each_sample_out_once() -> None:
    sampler = RssSampler(os.getpid(), every_s=0.01)
    sampler.start()
    try:
        deadline = time.monotonic() + 10
        while len(sampler.samples) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        taken = sampler.take()
    finally:
        sampler.stop.set()
        sampler.join(timeout=10)
    assert len(taken) >= 3 and all(mb > 1 for mb in taken)
    sampler.take()
    assert sampler.take() == []  # stopped: nothing new, and nothing handed out twice


def test_the_sampler_stops_when_the_process_is_gone() -> None:
    sampler = RssSampler(2**22 + 12345, every_s=0.01)  # above pid_max's default: no such pid
    sampler.start()
    sampler.join(timeout=10)
    assert not sampler.is_alive() and sampler.take() == []
