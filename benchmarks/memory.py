"""Runtime memory: RSS idle with a 10,000-capability bundle, and after a load test.

RSS is VmRSS from /proc/<pid>/status (VmHWM for the peak). A runtime with a
one-capability bundle is measured alongside as the floor (the interpreter
and libraries). The load is wrk (`-t2 -c64`) on the passthrough route of the
big bundle's `api-0/cap-0`, toward the nginx TLS upstream.

    python -m benchmarks.memory [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from aivault_ops.bundle import publish_bundle
from aivault_ops.bundle.source import BundleRef
from aivault_ops.runtime.bundles.loader import Loader
from aivault_ops.sops import load_identities
from benchmarks.bundles import HOST, Keys, SmallBundles, big_project
from benchmarks.common import Processes, WrkResult, in_tmp, run_wrk
from benchmarks.stack import BODY, Tls, start_nginx_upstream, start_runtime

BIG_HOST = "api-0.example.com"


def status_mb(pid: int, field: str) -> float:
    """A Vm* field of /proc/<pid>/status in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


@dataclass(frozen=True)
class MemoryResult:
    """RSS figures in MiB."""

    capabilities: int
    small_idle: float
    big_idle: float
    trimmed_idle: float
    retained_mb: float
    peak_mb: float
    sites: list[tuple[str, float]]
    imports: list[tuple[str, float]]
    big_after: float
    big_peak: float
    load: WrkResult
    duration_s: float


IMPORTS = (
    "ssl", "aiohttp", "uvloop", "httpx", "jinja2", "jsonschema", "yaml",
    "cryptography.hazmat.primitives.ciphers.aead", "pyrage", "watchdog.observers",
    "aivault_ops.commands.serve",
)  # fmt: skip
_IMPORT_PROBE = (
    "import importlib, sys\n"
    "def rss():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024\n"
    "before = rss(); importlib.import_module(sys.argv[1]); print(rss() - before)\n"
)


def import_costs() -> list[tuple[str, float]]:
    """RSS each module adds when imported alone into a fresh interpreter (MiB).

    Overlapping: `aiohttp` includes `ssl`, `aivault_ops.commands.serve` (with
    the runtime modules it imports at start) includes most of the others.
    """
    costs = []
    for module in (*IMPORTS, "aivault_ops.runtime.http.server"):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, module],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        costs.append((module, float(out.stdout)))
    return costs


def traced_load(bundle: Path, keys: Keys) -> tuple[float, float, list[tuple[str, float]]]:
    """In-process `Loader.load` under tracemalloc: MiB retained by the loaded policy,
    peak MiB during the load, and the biggest retaining files."""
    identities = load_identities(keys.identity_file, environ={})
    loader = Loader((keys.signing_key.public_key,), identities, lambda: datetime.now(UTC))
    data = bundle.read_bytes()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    loaded = loader.load(BundleRef(1, bundle.name), data, floor=None, active=None)
    gc.collect()
    _, peak = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "filename")
    retained = sum(s.size_diff for s in stats) / 2**20
    sites = [(_short(s.traceback[0].filename), s.size_diff / 2**20) for s in stats[:8]]
    del loaded
    return retained, peak / 2**20, sites


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def measure(workdir: Path, processes: Processes, *, capabilities: int, files: int,
            duration_s: float) -> MemoryResult:  # fmt: skip
    """Start nginx and two runtimes (one-capability and big bundle), measure, load, measure."""
    tls = Tls.create(workdir, hosts=(HOST, BIG_HOST))
    keys = Keys.create(workdir)
    upstream = start_nginx_upstream(processes, workdir, tls)
    for name, data in (
        ("small", SmallBundles.create(keys).build(1)),
        ("big", big_project(workdir / "repo", keys, capabilities, files)),
    ):
        (workdir / f"{name}-bundles").mkdir()
        publish_bundle(workdir / f"{name}-bundles", data, 1)
    (workdir / "trim-bundles").symlink_to(workdir / "big-bundles")
    small = start_runtime(processes, workdir, name="small", keys=keys, tls=tls,
                          upstream_port=upstream)  # fmt: skip
    big = start_runtime(processes, workdir, name="big", keys=keys, tls=tls,
                        upstream_port=upstream, hosts=(BIG_HOST,))  # fmt: skip
    trim = start_runtime(processes, workdir, name="trim", keys=keys, tls=tls,
                         upstream_port=upstream, hosts=(BIG_HOST,),
                         variant="malloc-trim")  # fmt: skip
    time.sleep(1.0)
    small_idle, big_idle = status_mb(small.pid, "VmRSS"), status_mb(big.pid, "VmRSS")
    trimmed_idle = status_mb(trim.pid, "VmRSS")
    retained, peak, sites = traced_load(workdir / "big-bundles" / "bundle-1.tar.gz", keys)
    url = f"{big.url}/v/api-0/v1/res-0"
    answer = httpx.get(url, headers={"Authorization": f"Bearer {keys.token}"}, timeout=10)
    if answer.status_code != 200 or answer.text != BODY:
        raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
    load = run_wrk(url, connections=64, duration_s=duration_s,
                   headers=(f"Authorization: Bearer {keys.token}",))  # fmt: skip
    return MemoryResult(
        capabilities=capabilities,
        small_idle=small_idle,
        big_idle=big_idle,
        trimmed_idle=trimmed_idle,
        retained_mb=retained,
        peak_mb=peak,
        sites=sites,
        imports=import_costs(),
        big_after=status_mb(big.pid, "VmRSS"),
        big_peak=status_mb(big.pid, "VmHWM"),
        load=load,
        duration_s=duration_s,
    )


def render(result: MemoryResult) -> str:
    """One Markdown table."""
    caps = f"{result.capabilities:,}"
    lines = [
        "| runtime (1 worker) | RSS (MiB) |",
        "|---|---:|",
        f"| idle, 1-capability bundle (floor: interpreter + libraries) | {result.small_idle:.1f} |",
        f"| idle, {caps}-capability bundle | {result.big_idle:.1f} |",
        f"| {caps}-capability bundle, after {result.duration_s:g} s of wrk -c64"
        f" ({result.load.requests:,} requests, {result.load.errors} errors)"
        f" | {result.big_after:.1f} |",
        f"| {caps}-capability bundle, peak (VmHWM) | {result.big_peak:.1f} |",
        f"| what-if: idle, {caps}-capability bundle, `gc.collect()` + `malloc_trim(0)` after"
        f" the load (`benchmarks/variants.py malloc-trim`) | {result.trimmed_idle:.1f} |",
        "",
        f"The {caps}-capability bundle costs {result.big_idle - result.small_idle:.1f} MiB"
        " over the floor (target: idle ≤ 80 MB).",
        "",
        f"In-process `Loader.load` of the same bundle under tracemalloc: the loaded policy"
        f" retains {result.retained_mb:.1f} MiB of Python objects; the load peaks at"
        f" {result.peak_mb:.1f} MiB traced. Biggest retainers (by file that allocated):",
        "",
        "| file | retained MiB |",
        "|---|---:|",
        *(f"| `{name}` | {size:.2f} |" for name, size in result.sites),
        "",
        "What the floor is made of: RSS each module adds when imported alone into a fresh"
        " interpreter (overlapping; `aiohttp` includes `ssl`):",
        "",
        "| module | + RSS (MiB) |",
        "|---|---:|",
        *(f"| `{name}` | {size:.1f} |" for name, size in result.imports),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> MemoryResult:
    """Run the benchmark standalone and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="20 capabilities, 1 s load")
    args = parser.parse_args(argv)
    sizes = (20, 2, 1.0) if args.smoke else (10_000, 500, 5.0)
    result = in_tmp(
        lambda workdir, processes: measure(
            workdir, processes, capabilities=sizes[0], files=sizes[1], duration_s=sizes[2]
        )
    )
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
