"""The soak's slopes: least squares over minute-long window ends, past the warm-up."""

from __future__ import annotations

import pytest

from benchmarks.soak import Settings, SoakResult, Window


def soak(rss: list[float]) -> SoakResult:
    result = SoakResult(Settings.of(len(rss), smoke=False, slow=False), 68.0, 17)
    result.windows = [
        Window(60.0 * (i + 1), 1.0, 1.0, 1, 0, 0, mb, 44, 1, []) for i, mb in enumerate(rss)
    ]
    return result


def test_the_warm_up_window_is_left_out() -> None:
    assert soak([60.0, 70.0, 70.0, 70.0]).rss_slope == pytest.approx(0.0)
    assert soak([70.0, 70.1, 70.2, 70.3]).rss_slope == pytest.approx(0.1)


def test_the_second_half_shows_whether_a_creep_settles() -> None:
    settling = soak([70.0, 70.1, 70.2, 70.3, 70.3, 70.3, 70.3, 70.3])
    assert settling.rss_slope > 0.02
    assert settling.rss_slope_second_half == pytest.approx(0.0)
