"""Reload under load: publish N bundles, time publish → first response under each.

Bundle N allows one more path prefix, `/v1/gen-N`. A probe asks for
`/v/my-api/v1/gen-N` in a tight loop from just before the publish; the
first 200 is the first response served under bundle N. Meanwhile a steady
load (a bounded number of concurrent keep-alive httpx clients) asks for
`/v1/users`, allowed by every bundle; each answer that is not a 200 with the
upstream body counts as failed. Bundles are signed before the clock starts;
publishing is `publish_bundle` (temp file, fsync, link), as `apply` does.

    python -m benchmarks.reload [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aivault_ops.bundle import publish_bundle
from benchmarks.bundles import UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import Processes, in_tmp, percentile
from benchmarks.stack import BODY, Tls, start_nginx_upstream, start_runtime

LOAD_CLIENTS = 8
PUBLISH_TIMEOUT_S = 15.0


@dataclass
class ReloadResult:
    """Publish → active latencies (s), steady-load counts."""

    bundles: int
    latencies: list[float] = field(default_factory=list)
    publish_only: list[float] = field(default_factory=list)  # write, fsync, link
    timeouts: int = 0
    load_ok: int = 0
    load_failed: int = 0
    load_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


async def _steady(
    url: str, headers: dict[str, str], stop: asyncio.Event, result: ReloadResult
) -> None:
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        while not stop.is_set():
            try:
                response = await client.get(url)
                ok = response.status_code == 200 and response.text == BODY
                detail = f"{response.status_code} {response.text[:120]}"
            except httpx.HTTPError as error:
                ok, detail = False, type(error).__name__
            if ok:
                result.load_ok += 1
            else:
                result.load_failed += 1
                result.failures.append(detail)


async def _until_active(client: httpx.AsyncClient, url: str) -> bool:
    deadline = time.monotonic() + PUBLISH_TIMEOUT_S
    while time.monotonic() < deadline:
        if (await client.get(url)).status_code == 200:
            return True
    return False


async def _publish_all(
    base: str, headers: dict[str, str], bundle_dir: Path, built: list[bytes], result: ReloadResult
) -> None:
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        for offset, data in enumerate(built):
            serial = offset + 2
            probe = f"{base}/v/my-api/v1/gen-{serial}"
            start = time.perf_counter()
            await asyncio.to_thread(publish_bundle, bundle_dir, data, serial)
            result.publish_only.append(time.perf_counter() - start)
            if await _until_active(client, probe):
                result.latencies.append(time.perf_counter() - start)
            else:
                result.timeouts += 1


async def _run(base: str, token: str, bundle_dir: Path, built: list[bytes]) -> ReloadResult:
    headers = {"Authorization": f"Bearer {token}"}
    result = ReloadResult(len(built))
    stop = asyncio.Event()
    url = f"{base}/v/my-api{UPSTREAM_PATH}"
    loads = [asyncio.create_task(_steady(url, headers, stop, result)) for _ in range(LOAD_CLIENTS)]
    started = time.perf_counter()
    try:
        await asyncio.sleep(0.5)
        await _publish_all(base, headers, bundle_dir, built, result)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*loads)
    result.load_seconds = time.perf_counter() - started
    return result


def measure(workdir: Path, processes: Processes, *, bundles: int) -> ReloadResult:
    """Start nginx and a runtime at serial 1, then publish serials 2…bundles+1 under load."""
    tls = Tls.create(workdir)
    keys = Keys.create(workdir)
    factory = SmallBundles.create(keys)
    upstream = start_nginx_upstream(processes, workdir, tls)
    bundle_dir = workdir / "reload-bundles"
    bundle_dir.mkdir()
    publish_bundle(bundle_dir, factory.build(1), 1)
    runtime = start_runtime(
        processes, workdir, name="reload", keys=keys, tls=tls, upstream_port=upstream
    )
    built = [factory.build(s, (f"/v1/gen-{s}",)) for s in range(2, bundles + 2)]
    return asyncio.run(_run(runtime.url, keys.token, bundle_dir, built))


def render(result: ReloadResult) -> str:
    """One Markdown table."""
    ms = [x * 1000 for x in result.latencies]
    p50 = f"{percentile(ms, 0.5):.1f}" if ms else "n/a"
    p99 = f"{percentile(ms, 0.99):.1f}" if ms else "n/a"
    span = f"{min(ms):.1f}–{max(ms):.1f}" if ms else "n/a"
    own = [x * 1000 for x in getattr(result, "publish_only", [])]  # absent in older pickles
    publish = f"{percentile(own, 0.5):.1f}" if own else "n/a"
    rate = result.load_ok / result.load_seconds if result.load_seconds else 0.0
    lines = [
        f"{result.bundles} bundles published one after the other under a steady load of"
        f" {LOAD_CLIENTS} concurrent keep-alive clients (httpx) on the passthrough route.",
        "",
        "| bundles | publish → first response (p50, ms) | p99 (ms) | min–max (ms) |"
        " the publish alone (p50, ms) | not active in 15 s | load requests ok | failed |"
        " load req/s |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        f"| {result.bundles} | {p50} | {p99} | {span} | {publish} | {result.timeouts} |"
        f" {result.load_ok:,} | {result.load_failed} | {rate:,.0f} |",
        "",
        "Where the time goes: the publish itself (temp file, fsync, link, directory"
        " fsync), the inotify event, a 10 ms debounce that coalesces one publish's events,"
        " then the load (verify, decrypt, build: a few ms for this bundle).",
    ]
    if result.failures:
        lines += ["", "First failures: " + "; ".join(result.failures[:5])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> ReloadResult:
    """Run the benchmark standalone and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="5 bundles")
    args = parser.parse_args(argv)
    bundles = 5 if args.smoke else 100
    result = in_tmp(lambda workdir, processes: measure(workdir, processes, bundles=bundles))
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
