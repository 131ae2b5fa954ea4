"""`python -m aivault_ops serve …` as a real subprocess on a free loopback port.

Waits are bounded polls (never a sleep used as an assertion); stderr goes
to a file so tests can scan every log line for the canary secret.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

WAIT_S = 20.0
STEP_S = 0.05


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
    """Poll `condition` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(STEP_S)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class StatusApi:
    """/healthz and /status polling over `self.url`, shared by both runtime helpers."""

    url: str

    def answers_healthz(self) -> bool:
        """True when /healthz answers 200."""
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        """GET /status."""
        data: dict[str, Any] = httpx.get(self.url + "/status", timeout=5).json()
        return data

    def wait_serial(self, serial: int) -> None:
        """Poll /status until `serial` is active."""
        wait_until(lambda: self.status()["serial"] == serial, what=f"serial {serial}")

    def wait_error(self, fragment: str) -> dict[str, Any]:
        """Poll /status until lastError mentions `fragment`; return that status."""
        wait_until(lambda: fragment in str(self.status()["lastError"]), what=fragment)
        return self.status()


@dataclass
class RuntimeProcess(StatusApi):
    """One running runtime: its URL, state dir, log file and process."""

    bundle_dir: Path | None  # None: the source is in `args` (--bundle-source)
    state_dir: Path
    log_path: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    nofile: int | None = None  # RLIMIT_NOFILE for the runtime (through prlimit)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> RuntimeProcess:
        """Start the subprocess; with `wait`, poll /healthz until it answers."""
        command = [sys.executable, "-m", "aivault_ops", "serve"]
        if self.bundle_dir is not None:
            command += ["--bundle-dir", str(self.bundle_dir)]
        command += ["--state-dir", str(self.state_dir), "--listen", f"127.0.0.1:{self.port}"]
        command += ["--poll-interval", "0.3", *self.args]  # a later --poll-interval wins
        if self.nofile is not None:
            command = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stderr=log, stdout=log, env=env)
        if wait:
            wait_until(self.healthy, what="runtime /healthz")
        return self

    def healthy(self) -> bool:
        """True when /healthz answers 200; fails fast if the process died."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"runtime exited with {self.process.returncode}: {self.log()}")
        return self.answers_healthz()

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait (bounded); the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def scan_tree(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle`."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(path)
    return hits


StartRuntime = Callable[..., RuntimeProcess]
