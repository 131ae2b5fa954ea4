"""The same runtime as `serve`, assembled by `build_process` and run in a thread.

Same options, same code path as the subprocess (`build_process`,
`serve_forever`), but in the test process, so coverage sees it and tests run
faster. The interface matches `RuntimeProcess` (url, status, wait_*, log, stop).
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.runtime_proc import StatusApi, free_port, wait_until

from aivault_ops.runtime.observe.audit_settings import AuditSettings
from aivault_ops.runtime.observe.log import StderrLog
from aivault_ops.runtime.options import RuntimeOptions
from aivault_ops.runtime.process import open_listeners, serve_forever
from aivault_ops.runtime.wiring import build_process


@dataclass
class InProcessRuntime(StatusApi):
    """A runtime served by a background event loop in this process."""

    bundle_dir: Path
    state_dir: Path
    options: dict[str, Any]
    port: int = field(default_factory=free_port)
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InProcessRuntime:
        """Build (loads the newest bundle synchronously), then serve in a thread."""
        defaults: dict[str, Any] = {
            "bundle_dir": self.bundle_dir,
            "state_dir": self.state_dir,
            "poll_interval": 0.3,
            "dev_resolve": [],
            "dev_ca_cert": None,
            "identity": None,
            "trust": [],
            "max_connections": None,
            "header_timeout": 10.0,
            "keepalive_timeout": 30.0,
            "body_timeout": 60.0,
            "shutdown_grace": 10.0,
            "upstream_body_timeout": 600.0,
            "bundle_source": None,
            "rate_limit_store": None,
        }
        given = {**defaults, **self.options}
        audit = {
            key[len("audit_") :]: given.pop(key) for key in list(given) if key.startswith("audit_")
        }
        options = RuntimeOptions(**given, audit=AuditSettings(**audit))
        process = build_process(options, StderrLog(stream=self.stream), dict(os.environ))
        self.process = process
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        listeners = open_listeners(("127.0.0.1", self.port), None)
        coroutine = serve_forever(process, listeners, until=self._stop.wait)
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(coroutine,))
        self._thread.start()
        wait_until(self.answers_healthz, what="in-process runtime")
        return self

    def log(self) -> str:
        """The log lines written so far."""
        return self.stream.getvalue()

    def stop(self) -> int:
        """Stop serving and join the thread; 0 when it ended cleanly."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=15)
        alive = self._thread.is_alive()
        if not alive:
            self._loop.close()
        return 1 if alive else 0
