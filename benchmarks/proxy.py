"""Proxy throughput and latency: wrk against four targets in one run.

(a) nginx TLS upstream directly, (b) nginx injecting reverse proxy,
(c) the aivault-ops runtime passthrough `/v/my-api/v1/users` (1 worker, and
`--workers 2`), (d) the naive aiohttp proxy. wrk keep-alive, `-t2 -c64` and
`-t1 -c1`, fixed duration, `--latency`; the targets are interleaved within
each round so drift on a shared box hits them alike.

    python -m benchmarks.proxy [--smoke]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks import profile
from benchmarks.bundles import UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import (
    Processes,
    Stat,
    WrkResult,
    children,
    cpu_seconds,
    free_port,
    in_tmp,
    rss_mb,
    run_wrk,
)
from benchmarks.stack import (
    BODY,
    Tls,
    nginx_accepts,
    start_naive,
    start_nginx_injector,
    start_nginx_upstream,
    start_runtime,
)

CONNECTIONS = (64, 1)
# Between them, every runtime patch in benchmarks/variants.py.
SMOKE_VARIANTS = ("v_server_audit", "v_reuse")
WORKER_SPLIT = ("c2", "v_reuse")
LABELS = {
    "a": "(a) nginx upstream, direct (https)",
    "b": "(b) nginx injecting reverse proxy",
    "c": "(c) aivault-ops runtime passthrough, 1 worker",
    "c2": "(c2) aivault-ops runtime passthrough, --workers 2",
    "d": "(d) naive aiohttp proxy (no policy)",
}
VARIANTS = {
    "v_audit": (
        "audit-off",
        1,
        "(c) with the audit append removed (upper bound of a cheaper audit)",
    ),
    "v_server": (
        "lean-server",
        1,
        "(c) behind a minimal httptools server instead of aiohttp's (what-if)",
    ),
    "v_server_audit": ("lean-server+audit-off", 1, "(c) with both: lean server, no audit"),
    "v_reuse": ("reuseport", 2, "(c2) `--workers 2`, one SO_REUSEPORT socket per worker"),
}


@dataclass(frozen=True)
class Target:
    """One thing wrk is pointed at."""

    key: str
    url: str
    pid: int
    headers: tuple[str, ...] = ()


@dataclass
class ProxyResult:
    """wrk samples per (target, connections), runtime RSS and the profile."""

    duration_s: float
    runs: int
    status_port: int = 0
    samples: dict[tuple[str, int], list[WrkResult]] = field(default_factory=dict)
    cpu: dict[tuple[str, int], list[tuple[float, float]]] = field(default_factory=dict)
    worker_cpu: dict[tuple[str, int], float] = field(default_factory=dict)
    upstream_connections: dict[tuple[str, int], int] = field(default_factory=dict)
    rss_idle_mb: float = 0.0
    rss_after_mb: float = 0.0
    profile: profile.Profile | None = None
    profile_note: str = ""

    def stat(self, key: str, connections: int, metric: str) -> Stat:
        """Median and spread of one metric."""
        return Stat.of([getattr(s, metric) for s in self.samples[(key, connections)]])

    def cpu_stat(self, key: str, connections: int, index: int) -> Stat:
        """Median and spread of cores used (index 0) or CPU µs per request (index 1)."""
        return Stat.of([sample[index] for sample in self.cpu[(key, connections)]])


def _check(target: Target) -> None:
    headers = dict(h.split(": ", 1) for h in target.headers)
    response = httpx.get(target.url, headers=headers, timeout=10, verify=False)
    if response.status_code != 200 or response.text != BODY:
        raise RuntimeError(
            f"{target.key} {target.url}: {response.status_code} {response.text[:200]!r}"
        )


def measure(
    workdir: Path,
    processes: Processes,
    *,
    duration_s: float,
    runs: int,
    variants: tuple[str, ...] = tuple(VARIANTS),
) -> ProxyResult:
    """Start everything, check every target answers the body, then the wrk rounds
    (`variants`: which what-if runtimes to include, keys of `VARIANTS`)."""
    tls = Tls.create(workdir)
    keys = Keys.create(workdir)
    bundles = SmallBundles.create(keys)
    status_port = free_port()
    upstream = start_nginx_upstream(processes, workdir, tls, status_port)
    injector = start_nginx_injector(processes, workdir, tls, upstream, bundles.secret)
    runtimes = {}
    setups: list[tuple[str, int, str | None]] = [("c", 1, None), ("c2", 2, None)]
    setups += [(key, VARIANTS[key][1], VARIANTS[key][0]) for key in variants]
    for name, workers, variant in setups:
        (workdir / f"{name}-bundles").mkdir()
        (workdir / f"{name}-bundles" / "bundle-1.tar.gz").write_bytes(bundles.build(1))
        runtimes[name] = start_runtime(
            processes, workdir, name=name, keys=keys, tls=tls, upstream_port=upstream,
            workers=workers, variant=variant,
        )  # fmt: skip
    naive = start_naive(processes, workdir, tls, upstream)
    token = (f"Authorization: Bearer {keys.token}",)
    pids = processes.pids
    targets = [
        Target("a", f"https://127.0.0.1:{upstream}{UPSTREAM_PATH}", pids["nginx-upstream"]),
        Target("b", f"http://127.0.0.1:{injector}{UPSTREAM_PATH}", pids["nginx-injector"]),
        Target("d", f"http://127.0.0.1:{naive}{UPSTREAM_PATH}", pids["naive"]),
    ]
    targets += [
        Target(key, f"{runtimes[key].url}/v/my-api{UPSTREAM_PATH}", runtimes[key].pid, token)
        for key in ("c", "c2", *variants)
    ]
    for target in targets:
        _check(target)
    result = ProxyResult(duration_s, runs, status_port=status_port)
    result.rss_idle_mb = rss_mb(runtimes["c"].pid)
    for _ in range(runs):
        for connections in CONNECTIONS:
            for target in targets:
                _sample(result, target, connections)
    result.rss_after_mb = rss_mb(runtimes["c"].pid)
    runtime = next(t for t in targets if t.key == "c")
    return _profiled(result, runtime.pid, runtime, workdir)


def _sample(result: ProxyResult, target: Target, connections: int) -> None:
    """One wrk run, with the CPU the target's processes used meanwhile."""
    workers = children(target.pid) if target.key in WORKER_SPLIT and connections > 1 else []
    per_worker = {pid: cpu_seconds(pid) for pid in workers}
    accepts = nginx_accepts(result.status_port)
    cpu_before, started = cpu_seconds(target.pid), time.perf_counter()
    sample = run_wrk(
        target.url, connections=connections, duration_s=result.duration_s, headers=target.headers
    )
    cpu = cpu_seconds(target.pid) - cpu_before
    for index, pid in enumerate(workers):
        spent = cpu_seconds(pid) - per_worker[pid]
        slot = (target.key, index + 1)
        result.worker_cpu[slot] = result.worker_cpu.get(slot, 0.0) + spent
    wall = time.perf_counter() - started
    opened = nginx_accepts(result.status_port) - accepts - 1
    key = (target.key, connections)
    result.upstream_connections[key] = result.upstream_connections.get(key, 0) + opened
    result.samples.setdefault(key, []).append(sample)
    result.cpu.setdefault(key, []).append((cpu / wall, cpu / max(1, sample.requests) * 1e6))


def _profiled(result: ProxyResult, pid: int, target: Target, workdir: Path) -> ProxyResult:
    seconds = max(1.0, result.duration_s)
    try:
        result.profile = profile.record(
            pid, seconds, workdir / "profile.txt",
            load=lambda: run_wrk(target.url, connections=64, duration_s=seconds + 1,
                                 headers=target.headers),
        )  # fmt: skip
    except profile.ProfileUnavailable as why:
        result.profile_note = str(why)
    return result


def _ratio(result: ProxyResult, top: str, bottom: str, connections: int = 64) -> str:
    top_rps = result.stat(top, connections, "rps").median
    return f"{top_rps / result.stat(bottom, connections, 'rps').median:.3f}×"


def render(result: ProxyResult) -> str:
    """The Markdown tables (medians with min–max of the runs) and the ratios."""
    lines = [
        f"wrk keep-alive, {result.duration_s:g} s per run, median of {result.runs} run(s)"
        " (min–max in parentheses). Upstream body: 33 bytes of JSON. CPU: user+system"
        " time of the target's own processes (for (a) nginx itself, otherwise the proxy"
        " without the upstream) during the run, from /proc; CPU µs/req = that time per"
        " request served — the machine-independent cost. Upstream conns opened: new"
        " connections (TLS handshakes) the nginx upstream accepted during the runs, all"
        " rounds together (nginx stub_status); with keep-alive pooling this stays near"
        " the number of concurrent connections.",
        "",
        "| target | conns | req/s | p50 (ms) | p99 (ms) | errors | CPU (cores) | CPU µs/req"
        " | upstream conns opened |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for connections in CONNECTIONS:
        for key, label in LABELS.items():
            rows = result.samples[(key, connections)]
            rps = result.stat(key, connections, "rps").fmt(0)
            p50 = result.stat(key, connections, "p50_ms").fmt(3)
            p99 = result.stat(key, connections, "p99_ms").fmt(3)
            errors = sum(r.errors for r in rows)
            cores = result.cpu_stat(key, connections, 0).median
            per_request = result.cpu_stat(key, connections, 1).median
            opened = result.upstream_connections.get((key, connections), 0)
            lines.append(
                f"| {label} | {connections} | {rps} | {p50} | {p99} | {errors}"
                f" | {cores:.2f} | {per_request:,.0f} | {opened:,} |"
            )
    added = result.stat("c", 1, "p50_ms").median - result.stat("a", 1, "p50_ms").median
    added2 = result.stat("c2", 1, "p50_ms").median - result.stat("a", 1, "p50_ms").median
    lines += [
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| (c)/(b) req/s at 64 connections | {_ratio(result, 'c', 'b')} |",
        f"| (c)/(d) req/s at 64 connections | {_ratio(result, 'c', 'd')} |",
        f"| (c2)/(b) req/s at 64 connections | {_ratio(result, 'c2', 'b')} |",
        f"| (c2)/(d) req/s at 64 connections | {_ratio(result, 'c2', 'd')} |",
        f"| (c2)/(c) req/s at 64 connections (second worker) | {_ratio(result, 'c2', 'c')} |",
        f"| (c)−(a) p50 at 1 connection | {added:.3f} ms |",
        f"| (c2)−(a) p50 at 1 connection | {added2:.3f} ms |",
        "",
        "What-if variants (measured here, not shipped; `benchmarks/variants.py` patches one"
        " hot-path function at start), same rounds as the rows above:",
        "",
        "| variant | req/s at 64 | vs (c) | CPU µs/req at 64 | p50 at 1 conn (ms)"
        " | added p50 vs (a) (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            _variant_row(result, key, label)
            for key, (_, _, label) in VARIANTS.items()
            if (key, 64) in result.samples
        ),
        "",
        "CPU seconds of each worker process over the 64-connection runs: "
        + "; ".join(
            f"{key} worker {n}: {v:.2f} s" for (key, n), v in sorted(result.worker_cpu.items())
        )
        + ".",
        "",
        f"Runtime (1 worker) RSS: {result.rss_idle_mb:.1f} MiB before the load,"
        f" {result.rss_after_mb:.1f} MiB after it.",
    ]
    return "\n".join(lines) + "\n"


def _variant_row(result: ProxyResult, key: str, label: str) -> str:
    rps = result.stat(key, 64, "rps")
    gain = rps.median / result.stat("c", 64, "rps").median
    p50 = result.stat(key, 1, "p50_ms")
    added = p50.median - result.stat("a", 1, "p50_ms").median
    errors = sum(r.errors for c in CONNECTIONS for r in result.samples[(key, c)])
    per_request = result.cpu_stat(key, 64, 1).median
    return (
        f"| {label} | {rps.fmt(0)} | {gain:.2f}× | {per_request:,.0f} | {p50.fmt(3)}"
        f" | {added:.3f} | {errors} |"
    )


def targets_met(result: ProxyResult) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the two proxy targets, best runtime configuration."""
    best = max(("c", "c2"), key=lambda k: result.stat(k, 64, "rps").median)
    rps = result.stat(best, 64, "rps").median
    added = result.stat("c", 1, "p50_ms").median - result.stat("a", 1, "p50_ms").median
    return [
        (f"≥ 10,000 req/s at 64 connections ({best})", f"{rps:,.0f} req/s", rps >= 10_000),
        ("≤ 0.3 ms added p50 at 1 connection (c)−(a)", f"{added:.3f} ms", added <= 0.3),
    ]


def main(argv: list[str] | None = None) -> ProxyResult:
    """Run the benchmark standalone and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 s loads, one run")
    args = parser.parse_args(argv)
    duration, runs = (1.0, 1) if args.smoke else (5.0, 3)
    variants = SMOKE_VARIANTS if args.smoke else tuple(VARIANTS)
    result = in_tmp(
        lambda workdir, processes: measure(
            workdir, processes, duration_s=duration, runs=runs, variants=variants
        )
    )
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
