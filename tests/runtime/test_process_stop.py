"""A stop signal is honoured whenever it arrives once a runtime serves, also while
`--workers` are still starting (real processes)."""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path

from support.bundles import BundleFactory
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until


def _listening(runtime: RuntimeProcess) -> bool:
    return "listening" in runtime.log()


def test_sigterm_while_workers_start_stops_every_worker_cleanly(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    """SIGTERM as soon as the first worker listens: the other may still be starting
    (before its event loop handles signals). It used to die of the signal's default
    action there, and the runtime exited 1."""
    factory.publish(bundle_dir, 1)
    for _ in range(4):
        runtime = start_runtime("--workers", "2", wait=False)
        wait_until(partial(_listening, runtime), what="a worker listening")
        assert runtime.process is not None
        runtime.process.send_signal(signal.SIGTERM)
        assert runtime.stop() == 0, runtime.log()
        log = runtime.log()
        assert log.count("stopping") == 2 and "Traceback" not in log
