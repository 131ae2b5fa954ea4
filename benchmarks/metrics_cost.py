"""`python -m benchmarks.metrics_cost`: the metrics' cost per request, in CPU time.

Each request counts once (`Metrics.request`) and, when it reached the
upstream, observes its latency (`Metrics.upstream_latency`). Measured for
one process (a registry in memory), for `serve --workers N`
(prometheus-client's multiprocess mode: mmap'd files, run in a child process
so this one stays single-process), and for the hand-written counting the
runtime had before (a `collections.Counter` and a bisect into the buckets),
as the baseline. CPU time (`time.process_time`), best of several rounds, so
a busy machine skews it less than wall time would.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import timeit
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from pathlib import Path

CALLS = 100_000
ROUNDS = 9
CAPABILITIES = [f"svc/cap-{i}" for i in range(20)]


def per_call_us(call: Callable[[int], None]) -> float:
    """Best CPU µs per call of `call(i)` over `ROUNDS` rounds of `CALLS` calls."""
    counter = iter(range(CALLS * ROUNDS * 2))
    timings = timeit.repeat(
        lambda: call(next(counter)), number=CALLS, repeat=ROUNDS, timer=time.process_time
    )
    return min(timings) / CALLS * 1e6


def baseline() -> Callable[[int], None]:
    """The counting the runtime did by hand before prometheus-client."""
    requests: Counter[tuple[str, str]] = Counter()
    buckets = [0] * 12
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
    total = [0.0, 0]

    def call(i: int) -> None:
        requests[(CAPABILITIES[i % 20], "allow")] += 1
        index = bisect_left(bounds, 0.03)
        if index < len(bounds):
            buckets[index] += 1
        total[0] += 0.03
        total[1] += 1

    return call


def runtime_metrics(shared: bool) -> Callable[[int], None]:
    """`Metrics` as the runtime uses it: one process, or one worker of several."""
    from aivault_ops.runtime.observe.audit import HEALTHY
    from aivault_ops.runtime.observe.metrics import Metrics

    if shared:
        directory = Path(tempfile.mkdtemp()) / "metrics"
        metrics = Metrics.for_workers(directory, lambda: (1, HEALTHY))
        metrics.worker_started()
    else:
        metrics = Metrics()

    def call(i: int) -> None:
        metrics.request(CAPABILITIES[i % 20], "allow")
        metrics.upstream_latency(0.03)

    return call


def main() -> None:
    """Print one line per variant; `--shared` measures the workers' mode only."""
    if sys.argv[1:] == ["--shared"]:
        print(f"{per_call_us(runtime_metrics(shared=True)):.2f}")
        return
    shared = subprocess.run(
        [sys.executable, "-m", "benchmarks.metrics_cost", "--shared"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    single = per_call_us(runtime_metrics(shared=False))
    print(f"hand-written counters (before): {per_call_us(baseline()):.2f} µs/request")
    print(f"prometheus-client, one process: {single:.2f} µs/request")
    print(f"prometheus-client, --workers N: {shared} µs/request")


if __name__ == "__main__":
    main()
