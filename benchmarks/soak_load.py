"""What runs beside wrk in the soak: a bundle publisher, clients of a slow path, and
an RSS sampler."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from aivault_ops.bundle import publish_bundle
from benchmarks.bundles import SmallBundles
from benchmarks.common import rss_mb
from benchmarks.stack import RuntimeHandle

SLOW_PATH = "/v1/slow"
KEEP_BUNDLES = 3


class Publisher(threading.Thread):
    """Publishes serial after serial, timing each one until `/status` shows it."""

    def __init__(self, runtime: RuntimeHandle, bundle_dir: Path, factory: SmallBundles,
                 every_s: float) -> None:  # fmt: skip
        super().__init__(name="soak-publisher", daemon=True)
        self.runtime, self.bundle_dir, self.factory = runtime, bundle_dir, factory
        self.every_s, self.serial = every_s, 1
        self.latencies: list[float] = []
        self.timeouts = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def publish_one(self, client: httpx.Client) -> None:
        """The next serial; its latency (s) is appended, or a timeout counted."""
        self.serial += 1
        data = self.factory.build(self.serial, (SLOW_PATH, f"/v1/gen-{self.serial}"))
        started = time.perf_counter()
        publish_bundle(self.bundle_dir, data, self.serial)
        deadline = started + 15
        while time.perf_counter() < deadline:
            if client.get(self.runtime.url + "/status").json().get("serial") == self.serial:
                with self.lock:
                    self.latencies.append(time.perf_counter() - started)
                break
            time.sleep(0.005)
        else:
            self.timeouts += 1
        old = self.bundle_dir / f"bundle-{self.serial - KEEP_BUNDLES}.tar.gz"
        old.unlink(missing_ok=True)

    def take(self) -> list[float]:
        """The latencies since the last call."""
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken

    def run(self) -> None:
        """Publish every `every_s` until stopped."""
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(self.every_s):
                self.publish_one(client)


class SlowClients:
    """A few clients asking for the slow path in a loop; counts answers and failures."""

    def __init__(self, url: str, token: str, count: int) -> None:
        self.url, self.token = url, token
        self.ok = self.failed = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    good = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    good = False
                if good:
                    self.ok += 1
                else:
                    self.failed += 1

    def __enter__(self) -> SlowClients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)


class RssSampler(threading.Thread):
    """The RSS (MiB) of a process every `every_s`, so that a window reports the least
    it held, not only the one instant at its end."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def take(self) -> list[float]:
        """The samples since the last call."""
        with self.lock:
            taken, self.samples = self.samples, []
        return taken

    def run(self) -> None:
        """Sample until stopped (or until the process is gone)."""
        while not self.stop.wait(self.every_s):
            try:
                sample = rss_mb(self.pid)
            except (OSError, RuntimeError):
                return
            with self.lock:
                self.samples.append(sample)
