"""Fleet: publish → every runtime serving (registry), and what a shared rate-limit check costs.

Propagation: the distribution registry (`docker-registry`) and N runtimes
polling `latest` (`--bundle-source`, `--poll-interval P`), all on
loopback. Each publish is what `apply` does after signing
(`OciRepository.publish`: blobs, `serial-<N>`, `latest`); the clock runs
from the start of the push until every runtime's `/status` reports the new
serial (polled every 5 ms). Bundles are signed before the clock starts.

Rate-limit cost, same run: one rate-limited capability (a limit no test
reaches), a runtime with in-process buckets against one with
`--rate-limit-store redis://…`, wrk driving both through nginx as the
upstream; CPU µs per request of the runtime (and of redis-server) from
/proc. Also the check alone, in process: client CPU per `check_async`.

    python -m benchmarks.fleet [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aivault_ops.bundle.archive import build_bundle
from aivault_ops.canonical_json import canonical_json
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository
from aivault_ops.runtime.policy.rate_limit import InMemoryRateLimitStore
from aivault_ops.runtime.policy.rate_limit_redis import RedisRateLimitStore, RedisSettings
from benchmarks.bundles import SECRET_PATH, UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import Processes, cpu_seconds, free_port, in_tmp, percentile, run_wrk
from benchmarks.common import wait_until as wait_for
from benchmarks.stack import REPO, Tls, start_nginx_upstream

REGISTRY_CONFIG = """\
version: 0.1
log: {{level: error, accesslog: {{disabled: true}}}}
storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}
http: {{addr: 127.0.0.1:{port}}}
"""
PUBLISH_TIMEOUT_S = 30.0
WRK_CONNECTIONS = 16


@dataclass
class CheckCost:
    """One store's cost per rate-limit check or request."""

    client_cpu_us: float
    server_cpu_us: float = 0.0
    wall_us: float = 0.0


@dataclass
class FleetResult:
    """Propagation latencies (s) and rate-limit costs."""

    runtimes: int
    poll_interval: float
    publishes: int
    all_serving: list[float] = field(default_factory=list)
    each_runtime: list[float] = field(default_factory=list)
    push_only: list[float] = field(default_factory=list)
    timeouts: int = 0
    checks: dict[str, CheckCost] = field(default_factory=dict)
    requests: dict[str, CheckCost] = field(default_factory=dict)
    rps: dict[str, float] = field(default_factory=dict)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start_registry(processes: Processes, workdir: Path) -> int:
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(REGISTRY_CONFIG.format(data=workdir / "registry-data", port=port))
    processes.start(["docker-registry", "serve", str(config)], workdir / "registry.log")
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/v2/"), "registry")
    return port


def start_redis(processes: Processes, workdir: Path) -> tuple[int, int]:
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    pid = processes.start(command, workdir / "redis.log", name="redis")
    wait_for(lambda: _answers_tcp(port), "redis")
    return port, pid


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _answers_tcp(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_runtime(
    processes: Processes, workdir: Path, name: str, keys: Keys, source: list[str]
) -> str:
    port = free_port()
    command = [sys.executable, "-m", "aivault_ops", "serve", *source]
    command += ["--state-dir", str(workdir / f"{name}-state"), "--listen", f"127.0.0.1:{port}"]
    command += ["--identity", str(keys.identity_file), "--trust", keys.trust]
    processes.start(command, workdir / f"{name}.log", env=_env(), name=name)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _serial(url) is not None, f"runtime {name}", timeout=120)
    return url


def _serial(url: str) -> int | None:
    try:
        value = httpx.get(url + "/status", timeout=5).json().get("serial")
    except (httpx.HTTPError, ValueError):
        return None
    return value if isinstance(value, int) else None


def measure_propagation(
    workdir: Path, processes: Processes, result: FleetResult, keys: Keys, factory: SmallBundles
) -> None:
    """Publish serials 2…N+1 one after the other; time push → every runtime serving."""
    port = start_registry(processes, workdir)
    reference = parse_reference(f"oci://127.0.0.1:{port}/bench/policy")
    repository = OciRepository(RegistryClient(reference, plain_http=True))
    publish = repository.publish
    publish(factory.build(1), serial=1, revision="bench-1", environment="bench")
    source = ["--bundle-source", f"{reference}:latest", "--plain-http"]
    source += ["--poll-interval", f"{result.poll_interval:g}"]
    urls = [
        start_runtime(processes, workdir, f"fleet-{i}", keys, source)
        for i in range(result.runtimes)
    ]
    built = [factory.build(s) for s in range(2, result.publishes + 2)]
    with httpx.Client(timeout=5) as client:
        for offset, data in enumerate(built):
            serial = offset + 2
            started = time.perf_counter()
            publish(data, serial=serial, revision=f"bench-{serial}", environment="bench")
            result.push_only.append(time.perf_counter() - started)
            seen = _until_all_serve(client, urls, serial, started)
            if seen is None:
                result.timeouts += 1
                continue
            result.each_runtime += seen
            result.all_serving.append(max(seen))
    repository.client.close()


def _until_all_serve(
    client: httpx.Client, urls: list[str], serial: int, started: float
) -> list[float] | None:
    seen: dict[str, float] = {}
    while time.perf_counter() - started < PUBLISH_TIMEOUT_S:
        for url in urls:
            if url not in seen and client.get(url + "/status").json().get("serial") == serial:
                seen[url] = time.perf_counter() - started
        if len(seen) == len(urls):
            return list(seen.values())
        time.sleep(0.005)
    return None


def limited_bundle(factory: SmallBundles) -> bytes:
    """Serial 1 with `rateLimitPerMinute` far above what wrk can send."""
    document = factory.policy()
    document["capabilities"]["my-api/users"]["policy"] = {"rateLimitPerMinute": 10**9}
    return build_bundle(
        policy_json=canonical_json(document),
        secret_files={SECRET_PATH: factory.secret_file},
        serial=1,
        revision="bench-1",
        environment="bench",
        expires_at=None,
        signing_key=factory.keys.signing_key,
    )


def measure_rate_limits(
    workdir: Path, processes: Processes, result: FleetResult, keys: Keys, factory: SmallBundles
) -> None:
    """CPU per rate-limit check and per proxied request: in-process buckets vs Redis."""
    redis_port, redis_pid = start_redis(processes, workdir)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    result.checks = asyncio.run(_check_costs(redis_url, redis_pid, result.publishes * 250))
    tls = Tls.create(workdir)
    upstream = start_nginx_upstream(processes, workdir, tls)
    bundles = workdir / "limited-bundles"
    bundles.mkdir()
    (bundles / "bundle-1.tar.gz").write_bytes(limited_bundle(factory))
    common = ["--bundle-dir", str(bundles), "--dev-ca-cert", str(tls.ca_file)]
    common += ["--dev-resolve", f"api.example.com=127.0.0.1:{upstream}"]
    duration = 1.0 if result.publishes <= 3 else 5.0
    for label, extra in (("in-process", []), ("redis", ["--rate-limit-store", redis_url])):
        url = start_runtime(processes, workdir, f"rl-{label}", keys, [*common, *extra])
        pid = processes.pids[f"rl-{label}"]
        before, redis_before = cpu_seconds(pid), cpu_seconds(redis_pid)
        run = run_wrk(
            f"{url}/v/my-api{UPSTREAM_PATH}",
            connections=WRK_CONNECTIONS,
            duration_s=duration,
            headers=[f"Authorization: Bearer {keys.token}"],
        )
        if run.errors:
            raise RuntimeError(f"{label}: {run.errors} failed requests under wrk")
        result.requests[label] = CheckCost(
            (cpu_seconds(pid) - before) / run.requests * 1e6,
            (cpu_seconds(redis_pid) - redis_before) / run.requests * 1e6,
        )
        result.rps[label] = run.rps


async def _check_costs(redis_url: str, redis_pid: int, count: int) -> dict[str, CheckCost]:
    local = InMemoryRateLimitStore()
    shared = RedisRateLimitStore(
        RedisSettings(redis_url),
        namespace=lambda: "bench",
        fallback=None,
        log=lambda *a, **k: None,
        clock=lambda: None,  # type: ignore[arg-type,return-value]
    )
    keys = [(f"agent-{i % 50}", "my-api/users") for i in range(count)]
    costs = {}
    for label, store in (("in-process", local), ("redis", shared)):
        await store.check_async(keys[0], 10**9, time.time())  # connect, load the script
        cpu, wall, server = time.process_time(), time.perf_counter(), cpu_seconds(redis_pid)
        for key in keys:
            await store.check_async(key, 10**9, time.time())
        costs[label] = CheckCost(
            (time.process_time() - cpu) / count * 1e6,
            (cpu_seconds(redis_pid) - server) / count * 1e6 if label == "redis" else 0.0,
            (time.perf_counter() - wall) / count * 1e6,
        )
    await shared.aclose()
    return costs


def measure(
    workdir: Path, processes: Processes, *, publishes: int, runtimes: int = 3, interval: float
) -> FleetResult:
    """Both parts, in one run."""
    keys = Keys.create(workdir)
    factory = SmallBundles.create(keys)
    result = FleetResult(runtimes, interval, publishes)
    measure_propagation(workdir, processes, result, keys, factory)
    measure_rate_limits(workdir, processes, result, keys, factory)
    return result


def render(result: FleetResult) -> str:
    """Two Markdown tables."""
    ms = [x * 1000 for x in result.all_serving]
    each = [x * 1000 for x in result.each_runtime]
    push = [x * 1000 for x in result.push_only]

    def p(samples: list[float], q: float) -> str:
        return f"{percentile(samples, q):.0f}" if samples else "n/a"

    lines = [
        f"{result.publishes} publishes to the distribution registry, {result.runtimes} runtimes"
        f" polling `latest` every {result.poll_interval:g} s (`--poll-interval`), all on"
        " loopback. Target: p50 ≤ poll interval + 100 ms.",
        "",
        "| publish → all runtimes serving (p50, ms) | p95 (ms) | one runtime (p50, ms) |"
        " the push alone (p50, ms) | not serving in 30 s |",
        "|---:|---:|---:|---:|---:|",
        f"| {p(ms, 0.5)} | {p(ms, 0.95)} | {p(each, 0.5)} | {p(push, 0.5)} | {result.timeouts} |",
        "",
        "Rate-limit check cost, same run: the check alone (`check_async`, client CPU and"
        " wall per check; redis-server CPU per check), then a proxied request through a"
        f" 1-worker runtime under wrk ({WRK_CONNECTIONS} connections), runtime CPU per request.",
        "",
        "| store | check: client CPU (µs) | check: Redis CPU (µs) | check: wall (µs) |"
        " request: runtime CPU (µs) | request: Redis CPU (µs) | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("in-process", "redis"):
        check = result.checks.get(label, CheckCost(0.0))
        request = result.requests.get(label, CheckCost(0.0))
        lines.append(
            f"| {label} | {check.client_cpu_us:.1f} | {check.server_cpu_us:.1f} |"
            f" {check.wall_us:.1f} | {request.client_cpu_us:.0f} | {request.server_cpu_us:.1f} |"
            f" {result.rps.get(label, 0.0):,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> FleetResult:
    """Run standalone and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="3 publishes, 1 s wrk")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    publishes = 3 if args.smoke else 20
    result = in_tmp(
        lambda workdir, processes: measure(
            workdir, processes, publishes=publishes, interval=args.poll_interval
        )
    )
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
