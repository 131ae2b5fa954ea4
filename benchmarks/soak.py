"""Soak: load, reloads and a slow upstream for N minutes; does anything creep?

One runtime (1 worker) in front of the nginx TLS upstream, with a bounded
audit log (`--audit-max-file-bytes`, `--audit-retain-bytes`). For N windows
of a minute each, all at once:

- wrk (two threads, 16 keep-alive connections; 4 in smoke mode) on the
  passthrough route;
- a fresh signed bundle published to the bundle directory every ~10 s, as
  `apply` does, timed from the publish to `/status` showing its serial (the
  publisher keeps the newest three files, like a pruned bundle directory);
- with a slow upstream, a few clients asking for `/v1/slow`, which nginx
  answers at 1 KiB/s (about 2 s per answer), holding upstream connections.

After each window (and a second for the runtime to close wrk's
connections): req/s, p99 and errors (wrk's socket errors and non-2xx,
plus failed slow answers), the runtime's RSS and open descriptors, the
bytes of its audit directory, and the reload latencies. RSS is also
sampled twice a second throughout: a window's *floor* is the least RSS
it saw. The end sample is one instant and may land inside something
short-lived (compressing a closed audit file holds about 0.8 MB for a
fraction of a second, a load holds its bundle twice); memory the runtime
keeps raises the floor of every window after it. The slopes (MB/min
after the first window, the warm-up; fds/min) are least-squares fits;
the RSS target is judged on the floors, the slope of the end samples is
printed beside it. Then a burst (wrk -c256) and what RSS does after it:
at once, after an idle pause, and after one more reload (a reload ends
with `malloc_trim`).

Smoke mode (`--smoke`, CI): three 10 s windows, a bundle every 2 s, a 2 s
burst; its figures mean nothing, it only proves the soak still runs.
`python -m benchmarks --only soak` always adds the slow upstream.

    python -m benchmarks.soak [--minutes N] [--slow-upstream] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aivault_ops.bundle import publish_bundle
from benchmarks.bundles import UPSTREAM_PATH, Keys, SmallBundles
from benchmarks.common import (
    Processes,
    answers,
    free_port,
    in_tmp,
    percentile,
    rss_mb,
    run_wrk,
    wait_until,
)
from benchmarks.soak_load import SLOW_PATH, Publisher, RssSampler, SlowClients
from benchmarks.stack import BODY, RuntimeHandle, Tls, _start_nginx, start_runtime

MB = 1024 * 1024 / 1_000_000  # MiB → MB
SLOW_BODY_BYTES = 2048
SETTLE_S = 1.0


@dataclass(frozen=True)
class Settings:
    """How long and how hard."""

    windows: int
    window_s: float
    connections: int
    publish_every_s: float
    slow_clients: int
    burst_s: float
    idle_s: float
    audit_max_file: int = 1024 * 1024
    audit_retain: int = 4 * 1024 * 1024

    @classmethod
    def of(cls, minutes: float, *, smoke: bool, slow: bool) -> Settings:
        """Full: one-minute windows. Smoke: three 10 s windows, reloads every 2 s."""
        if smoke:
            return cls(3, 10.0, 4, 2.0, 2 if slow else 0, 2.0, 3.0)
        return cls(max(2, round(minutes)), 60.0, 16, 10.0, 4 if slow else 0, 20.0, 40.0)


@dataclass(frozen=True)
class Window:
    """What one window measured, and the runtime's state at its end."""

    end_s: float
    rps: float
    p99_ms: float
    requests: int
    errors: int
    slow_ok: int
    rss_mb: float  # at the window's end
    rss_floor_mb: float  # the least of the window's samples
    fds: int
    audit_bytes: int
    reloads: list[float]


@dataclass(frozen=True)
class Burst:
    """RSS (MB) around a burst of 256 connections."""

    seconds: float
    idle_s: float
    requests: int
    errors: int
    error_kinds: str
    before: float
    after: float
    after_idle: float
    after_reload: float


@dataclass
class SoakResult:
    """Every window, the start state, the burst."""

    settings: Settings
    start_rss: float
    start_fds: int
    windows: list[Window] = field(default_factory=list)
    burst: Burst | None = None
    reload_timeouts: int = 0
    load_average: str = ""

    def slope(self, values: list[float], skip: int = 1) -> float:
        """Per minute, least squares over the window ends after the first `skip` (the
        warm-up: one window)."""
        points = [(w.end_s / 60, v) for w, v in zip(self.windows, values, strict=True)][skip:]
        if len(points) < 2:
            return 0.0
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread

    @property
    def rss_slope(self) -> float:
        """MB/min of the windows' RSS floors after the warm-up window."""
        return self.slope([w.rss_floor_mb for w in self.windows])

    @property
    def rss_slope_second_half(self) -> float:
        """MB/min of the floors over the second half of the windows (does a creep settle?)."""
        return self.slope([w.rss_floor_mb for w in self.windows], skip=len(self.windows) // 2)

    @property
    def rss_end_slope(self) -> float:
        """MB/min of the RSS at the windows' ends after the warm-up window."""
        return self.slope([w.rss_mb for w in self.windows])

    @property
    def fds_slope(self) -> float:
        """Open descriptors per minute after the warm-up window."""
        return self.slope([float(w.fds) for w in self.windows])

    @property
    def errors(self) -> int:
        """Failed requests over every window."""
        return sum(w.errors for w in self.windows)

    @property
    def audit_bound(self) -> int:
        """What retention allows on disk: the retained bytes, the active file, and one
        closed file that background maintenance has not compressed or pruned yet."""
        return self.settings.audit_retain + 2 * self.settings.audit_max_file


def _rss(pid: int) -> float:
    return rss_mb(pid) * MB


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _disk_bytes(directory: Path) -> int:
    """Bytes of the files in `directory` (one compressed or pruned meanwhile: skipped)."""
    total = 0
    for entry in os.scandir(directory):
        try:
            total += entry.stat(follow_symlinks=False).st_size if entry.is_file() else 0
        except FileNotFoundError:
            continue
    return total


def start_upstream(processes: Processes, workdir: Path, tls: Tls) -> int:
    """nginx over TLS: the 33-byte answer, and `/v1/slow` sent at 1 KiB/s."""
    port = free_port()
    slow = "x" * SLOW_BODY_BYTES
    block = (
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name _;\n"
        f"    ssl_certificate {tls.cert_file};\n    ssl_certificate_key {tls.key_file};\n"
        f"    location {SLOW_PATH} {{\n      default_type text/plain;\n"
        f"      limit_rate 1024;\n      return 200 '{slow}';\n    }}\n"
        "    location / {\n      default_type application/json;\n"
        f"      return 200 '{BODY}';\n    }}\n  }}\n"
    )
    _start_nginx(processes, workdir / "nginx-upstream", block)
    url = f"https://127.0.0.1:{port}{UPSTREAM_PATH}"
    wait_until(lambda: answers(url, verify=str(tls.ca_file)), "nginx upstream")
    return port


def measure(workdir: Path, processes: Processes, settings: Settings) -> SoakResult:
    """Start nginx and a runtime, run the windows, then the burst."""
    tls, keys = Tls.create(workdir), Keys.create(workdir)
    factory = SmallBundles.create(keys)
    upstream = start_upstream(processes, workdir, tls)
    bundle_dir = workdir / "soak-bundles"
    bundle_dir.mkdir()
    publish_bundle(bundle_dir, factory.build(1, (SLOW_PATH,)), 1)
    audit = ["--audit-rotate", "size", "--audit-max-file-bytes", str(settings.audit_max_file)]
    audit += ["--audit-retain-bytes", str(settings.audit_retain)]
    runtime = start_runtime(processes, workdir, name="soak", keys=keys, tls=tls,
                            upstream_port=upstream, extra_args=audit)  # fmt: skip
    result = SoakResult(settings, _rss(runtime.pid), _fds(runtime.pid))
    publisher = Publisher(runtime, bundle_dir, factory, settings.publish_every_s)
    header = (f"Authorization: Bearer {keys.token}",)
    url = f"{runtime.url}/v/my-api{UPSTREAM_PATH}"
    started = time.monotonic()
    slow = SlowClients(f"{runtime.url}/v/my-api{SLOW_PATH}", keys.token, settings.slow_clients)
    sampler = RssSampler(runtime.pid)
    publisher.start()
    sampler.start()
    try:
        with slow:
            for _ in range(settings.windows):
                slow_failed, slow_ok = slow.failed, slow.ok
                load = run_wrk(url, connections=settings.connections,
                               duration_s=settings.window_s, headers=header)  # fmt: skip
                processes.check_alive()
                time.sleep(SETTLE_S)  # the runtime closes wrk's connections
                end_rss = _rss(runtime.pid)
                result.windows.append(Window(
                    end_s=time.monotonic() - started, rps=load.rps, p99_ms=load.p99_ms,
                    requests=load.requests, errors=load.errors + slow.failed - slow_failed,
                    slow_ok=slow.ok - slow_ok, rss_mb=end_rss,
                    rss_floor_mb=min([end_rss, *(x * MB for x in sampler.take())]),
                    fds=_fds(runtime.pid),
                    audit_bytes=_disk_bytes(runtime.state_dir / "audit"),
                    reloads=publisher.take(),
                ))  # fmt: skip
                print(render_window(len(result.windows), result.windows[-1]), file=sys.stderr)
    finally:
        sampler.stop.set()
        publisher.stop.set()
        publisher.join(timeout=30)
    result.reload_timeouts = publisher.timeouts
    result.burst = _burst(runtime, url, header, settings, publisher)
    result.load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return result


def _burst(runtime: RuntimeHandle, url: str, header: tuple[str, ...], settings: Settings,
           publisher: Publisher) -> Burst:  # fmt: skip
    """wrk -c256, then RSS at once, after an idle pause (past the upstream keep-alive,
    30 s, in full runs), and after one more reload."""
    time.sleep(2)
    before = _rss(runtime.pid)
    seconds = settings.burst_s
    load = run_wrk(url, connections=256, duration_s=seconds, headers=header)
    after = _rss(runtime.pid)
    time.sleep(settings.idle_s)
    after_idle = _rss(runtime.pid)
    with httpx.Client(timeout=5) as client:
        publisher.publish_one(client)
    time.sleep(1)
    return Burst(
        seconds,
        settings.idle_s,
        load.requests,
        load.errors,
        load.error_kinds,
        before,
        after,
        after_idle,
        _rss(runtime.pid),
    )


def targets_met(result: SoakResult) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met); the slopes are judged only on minute-long windows."""
    minutes = result.settings.window_s >= 60 and len(result.windows) >= 3
    fds = [w.fds for w in result.windows]
    audit = max(w.audit_bytes for w in result.windows)
    return [
        ("soak: RSS slope after warm-up ≤ 0.005 MB/min", f"{result.rss_slope:+.4f} MB/min"
         f" (floors; ends {result.rss_end_slope:+.4f})",
         result.rss_slope <= 0.005 if minutes else None),
        ("soak: descriptors flat after warm-up", f"{min(fds[1:])}–{max(fds[1:])}"
         f" ({result.fds_slope:+.2f}/min)", max(fds[1:]) - min(fds[1:]) <= 2 if minutes else None),
        ("soak: audit disk within retention", f"{audit / 1e6:.2f} MB of"
         f" {result.audit_bound / 1e6:.2f} MB", audit <= result.audit_bound),
        ("soak: 0 errors, every reload served", f"{result.errors} errors,"
         f" {result.reload_timeouts} reloads late", result.errors == result.reload_timeouts == 0),
    ]  # fmt: skip


def render_window(index: int, w: Window) -> str:
    """One table row."""
    ms = [x * 1000 for x in w.reloads]
    reload = f"{percentile(ms, 0.5):.0f} / {max(ms):.0f}" if ms else "n/a"
    return (
        f"| {index} | {w.rps:,.0f} | {w.p99_ms:.1f} | {w.errors} | {w.slow_ok} |"
        f" {w.rss_floor_mb:.2f} / {w.rss_mb:.2f} | {w.fds} | {w.audit_bytes / 1e6:.2f} |"
        f" {len(ms)} | {reload} |"
    )


def render(result: SoakResult) -> str:
    """The per-window table, the slopes, the burst."""
    s = result.settings
    lines = [
        f"{s.windows} windows of {s.window_s:g} s: wrk `-t2 -c{s.connections}` on the passthrough"
        f" route, a fresh bundle published every {s.publish_every_s:g} s,"
        + (
            f" {s.slow_clients} clients on a slow upstream path (nginx at 1 KiB/s, ~2 s an answer)"
            if s.slow_clients
            else " no slow upstream"
        )
        + f"; audit log rotated at {s.audit_max_file / 2**20:g} MiB, closed files kept up"
        f" to {s.audit_retain / 2**20:g} MiB. Start: RSS {result.start_rss:.2f} MB,"
        f" {result.start_fds} fds.",
        "",
        "| window | req/s | p99 (ms) | errors | slow answers | RSS floor / end (MB) | fds |"
        " audit disk (MB) | reloads | reload p50 / max (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(render_window(i, w) for i, w in enumerate(result.windows, 1)),
        "",
        f"RSS slope after the warm-up window, of the floors: **{result.rss_slope:+.4f} MB/min**"
        f" (target ≤ 0.005), over the second half {result.rss_slope_second_half:+.4f} MB/min;"
        f" of the window ends {result.rss_end_slope:+.4f} MB/min;"
        f" fds: **{result.fds_slope:+.2f}/min**"
        f" ({min(w.fds for w in result.windows)}–{max(w.fds for w in result.windows)});"
        f" audit disk at most {max(w.audit_bytes for w in result.windows) / 1e6:.2f} MB"
        f" (retention bound {result.audit_bound / 1e6:.2f} MB); errors: **{result.errors}**;"
        f" reloads not served within 15 s: {result.reload_timeouts}."
        f" Load average at the end: {result.load_average}.",
    ]
    b = result.burst
    if b is not None:
        kinds = f": {b.error_kinds}" if b.error_kinds else ""
        lines += [
            "",
            f"Burst: wrk `-c256` for {b.seconds:g} s ({b.requests:,} requests, {b.errors}"
            f" errors{kinds}). RSS {b.before:.2f} MB before, {b.after:.2f} MB right after,"
            f" {b.after_idle:.2f} MB after {b.idle_s:g} s idle (the upstream keep-alive is"
            f" 30 s; the watcher trims every 10 s), {b.after_reload:.2f} MB after one more"
            " reload (which ends with `malloc_trim`).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> SoakResult:
    """Run the soak standalone and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=12.0, help="windows of a minute")
    parser.add_argument("--slow-upstream", action="store_true", help="add the slow clients")
    parser.add_argument("--smoke", action="store_true", help="three 10 s windows")
    args = parser.parse_args(argv)
    settings = Settings.of(args.minutes, smoke=args.smoke, slow=args.slow_upstream)
    result = in_tmp(lambda workdir, processes: measure(workdir, processes, settings))
    print(render(result), end="")
    return result


if __name__ == "__main__":
    main()
