"""Several runtimes polling one registry tag, and a request loop against them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from support.runtime_proc import RuntimeProcess
from support.upstream import RecordingUpstream

POLL = "0.2"


@dataclass
class Fleet:
    """Runtimes started against one `--bundle-source`, each with its own state dir."""

    tmp_path: Path
    source: str
    common: list[str]
    started: list[RuntimeProcess] = field(default_factory=list)

    def start(self, name: str) -> RuntimeProcess:
        runtime = RuntimeProcess(
            bundle_dir=None,
            state_dir=self.tmp_path / f"state-{name}",
            log_path=self.tmp_path / f"runtime-{name}.log",
            args=["--bundle-source", self.source, "--plain-http", *self.common],
        )
        runtime.args += ["--poll-interval", POLL]
        self.started.append(runtime)
        return runtime.start()

    def stop(self) -> None:
        for runtime in self.started:
            runtime.stop()


def dev_args(upstream: RecordingUpstream) -> list[str]:
    return ["--dev-resolve", upstream.dev_resolve(), "--dev-ca-cert", str(upstream.ca_file)]


class SteadyLoad:
    """A bounded request loop against every runtime; counts every answer that is not a 200."""

    def __init__(self, urls: list[str], headers: dict[str, str]) -> None:
        self.urls, self.headers = urls, headers
        self.ok, self.failed = 0, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=10) as client:
            while not self._stop.is_set() and self.ok < 5000:
                for url in self.urls:
                    response = client.get(url)
                    if response.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"{url}: {response.status_code} {response.text[:80]}")

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
