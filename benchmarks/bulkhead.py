"""Bulkheads: a fast capability's throughput while another upstream is slow and saturated.

    python -m benchmarks.bulkhead [--smoke]     (or: python -m benchmarks --only bulkhead)

One runtime serves two capabilities: `my-api/users` toward a fast nginx
upstream (`api.example.com`) and `slow-api/users` toward
`benchmarks.slow_upstream` (`slow.example.com`), which answers every
request after `delay_s`. wrk drives the fast capability alone, then again
while a second wrk holds `slow_conns` connections open on the slow one, then
alone once more; the ratio is the fast req/s beside the slow load over the
mean of the two runs alone (target ≥ 0.8).

The same is measured on a second runtime whose per-host limit equals the
whole pool (`--upstream-max-per-host` = `--upstream-max-connections`): the
shared first-come-first-served pool the bulkheads replaced, where the slow
host takes every connection and the fast capability falls off a cliff.
"""

from __future__ import annotations

import argparse
import copy
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aivault_ops.bundle import build_bundle
from aivault_ops.canonical_json import canonical_json
from benchmarks.bundles import HOST, SECRET_PATH, UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import (
    Processes,
    WrkResult,
    answers,
    free_port,
    in_tmp,
    parse_wrk,
    run_wrk,
    wait_until,
)
from benchmarks.stack import Tls, start_nginx_upstream, start_runtime

SLOW_HOST = "slow.example.com"
TARGET_RATIO = 0.8


@dataclass(frozen=True)
class Sizes:
    """The load: fast wrk connections, slow connections held, the slow delay, pool sizes."""

    fast_conns: int
    slow_conns: int
    delay_s: float
    duration_s: float
    pool: int

    @classmethod
    def of(cls, smoke: bool) -> Sizes:
        """The issue's scenario (300 slow requests of 2 s), or a tiny one for --smoke."""
        if smoke:
            return cls(fast_conns=8, slow_conns=24, delay_s=0.5, duration_s=1.0, pool=16)
        return cls(fast_conns=64, slow_conns=300, delay_s=2.0, duration_s=5.0, pool=256)


@dataclass
class Phase:
    """One runtime: the fast capability alone (before, after) and beside the slow load."""

    alone: list[WrkResult] = field(default_factory=list)
    beside_slow: WrkResult | None = None
    slow: WrkResult | None = None

    @property
    def ratio(self) -> float:
        """Fast req/s beside the slow load over its mean alone."""
        assert self.beside_slow is not None
        alone = sum(run.rps for run in self.alone) / len(self.alone)
        return self.beside_slow.rps / alone if alone else 0.0


@dataclass
class BulkheadResult:
    """Both runtimes' phases, by label."""

    sizes: Sizes
    smoke: bool
    phases: dict[str, Phase] = field(default_factory=dict)


def policy(bundles: SmallBundles) -> dict[str, Any]:
    """The small policy plus `slow-api/users` toward SLOW_HOST (same key, same consumer)."""
    document = bundles.policy()
    document["providers"]["slow-api"] = {"source": "custom", "hosts": [SLOW_HOST]}
    credential = copy.deepcopy(document["credentials"]["my-api"])
    document["credentials"]["slow-api"] = credential | {
        "provider": "slow-api",
        "hosts": [SLOW_HOST],
    }
    capability = copy.deepcopy(document["capabilities"]["my-api/users"])
    document["capabilities"]["slow-api/users"] = capability | {
        "credential": "slow-api",
        "provider": "slow-api",
        "hosts": [SLOW_HOST],
        "policy": {"timeoutMs": 60_000},
    }
    document["consumers"]["agent"]["capabilities"] = ["my-api/*", "slow-api/*"]
    return document


def _bundle(bundles: SmallBundles) -> bytes:
    return build_bundle(
        policy_json=canonical_json(policy(bundles)),
        secret_files={SECRET_PATH: bundles.secret_file},
        serial=1,
        revision="bench-bulkhead",
        environment="bench",
        expires_at=None,
        signing_key=bundles.keys.signing_key,
    )


def start_slow_upstream(processes: Processes, workdir: Path, tls: Tls, delay_s: float) -> int:
    """`benchmarks.slow_upstream` on a free port; returns the port."""
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.slow_upstream", str(port)]
    command += [str(tls.cert_file), str(tls.key_file), str(delay_s)]
    processes.start(command, workdir / "slow-upstream.log", name="slow-upstream")
    url = f"https://127.0.0.1:{port}/"
    wait_until(lambda: answers(url, verify=str(tls.ca_file)), "slow upstream")
    return port


def _measure_runtime(url: str, token: str, sizes: Sizes) -> Phase:
    fast_url = f"{url}/v/my-api{UPSTREAM_PATH}"
    slow_url = f"{url}/v/slow-api{UPSTREAM_PATH}"

    def fast() -> WrkResult:
        return run_wrk(
            fast_url, connections=sizes.fast_conns, duration_s=sizes.duration_s, headers=(token,)
        )

    phase = Phase()
    phase.alone.append(fast())
    warmup = min(sizes.delay_s, 1.0) + 0.5
    slow_duration = math.ceil(warmup + sizes.duration_s + 1.0)  # wrk takes whole seconds
    command = ["wrk", "-t1", f"-c{sizes.slow_conns}", f"-d{slow_duration}s", "--timeout", "60s"]
    command += ["--latency", "-H", token, slow_url]
    slow = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup)  # every slow connection has a request in flight
        phase.beside_slow = fast()
        output, _ = slow.communicate(timeout=slow_duration + 90)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    phase.slow = parse_wrk(output)
    phase.alone.append(fast())
    return phase


def measure(workdir: Path, processes: Processes, *, smoke: bool) -> BulkheadResult:
    """Both runtimes, one after the other, against the same two upstreams."""
    sizes = Sizes.of(smoke)
    tls, keys = Tls.create(workdir, hosts=(HOST, SLOW_HOST)), Keys.create(workdir)
    bundle = _bundle(SmallBundles.create(keys))
    fast_port = start_nginx_upstream(processes, workdir, tls)
    slow_port = start_slow_upstream(processes, workdir, tls, sizes.delay_s)
    pool = ("--upstream-max-connections", str(sizes.pool))
    runtimes = {
        f"bulkheads (per host: {sizes.pool // 2}, the default half)": pool,
        f"one shared pool (per host: {sizes.pool})": (
            *pool, "--upstream-max-per-host", str(sizes.pool),
        ),
    }  # fmt: skip
    result = BulkheadResult(sizes, smoke)
    for index, (label, flags) in enumerate(runtimes.items()):
        name = f"bulkhead-{index}"
        (workdir / f"{name}-bundles").mkdir()
        (workdir / f"{name}-bundles" / "bundle-1.tar.gz").write_bytes(bundle)
        handle = start_runtime(
            processes, workdir, name=name, keys=keys, tls=tls, upstream_port=fast_port,
            extra_args=("--dev-resolve", f"{SLOW_HOST}=127.0.0.1:{slow_port}", *flags),
        )  # fmt: skip
        result.phases[label] = _measure_runtime(
            handle.url, f"Authorization: Bearer {keys.token}", sizes
        )
    return result


def render(result: BulkheadResult) -> str:
    """The section's table."""
    s = result.sizes
    lines = [
        f"The fast capability (nginx upstream, wrk {s.fast_conns} connections, {s.duration_s:g} s"
        f" per run) alone and while {s.slow_conns} connections hold requests open on a slow"
        f" upstream answering after {s.delay_s:g} s; upstream pool"
        f" `--upstream-max-connections {s.pool}`, 1 worker. Ratio: fast req/s beside the slow"
        f" load over the mean of the runs alone before and after (target ≥ {TARGET_RATIO}).",
        "",
        "| runtime | fast alone (req/s) | fast beside slow (req/s) | ratio | fast p99 beside"
        " slow (ms) | fast errors | slow (req/s) | slow errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, phase in result.phases.items():
        beside, slow = phase.beside_slow, phase.slow
        assert beside is not None and slow is not None
        alone = " / ".join(f"{run.rps:,.0f}" for run in phase.alone)
        lines.append(
            f"| {label} | {alone} | {beside.rps:,.0f} | {phase.ratio:.2f} | {beside.p99_ms:.1f}"
            f" | {beside.errors} | {slow.rps:,.1f} | {slow.errors} |"
        )
    return "\n".join(lines) + "\n"


def target(result: BulkheadResult) -> tuple[str, str, bool | None]:
    """The issue's target: the fast capability keeps ≥ 80 % of its throughput."""
    phase = next(iter(result.phases.values()))
    label = (
        f"bulkheads: a fast capability keeps ≥ {TARGET_RATIO:.0%} of its req/s beside a"
        " saturated slow upstream"
    )
    return (label, f"{phase.ratio:.2f}", None if result.smoke else phase.ratio >= TARGET_RATIO)


def main(argv: list[str] | None = None) -> BulkheadResult:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulkhead", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, ~1 s loads")
    options = parser.parse_args(argv)
    result = in_tmp(lambda workdir, processes: measure(workdir, processes, smoke=options.smoke))
    print(render(result))
    return result


if __name__ == "__main__":
    main()
