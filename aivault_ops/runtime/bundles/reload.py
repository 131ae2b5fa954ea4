"""Hot reload: watch the bundle dir, load new bundles off the event loop, swap.

watchdog events (debounced) and a periodic poll of the directory listing
(names, symlink targets, inodes, sizes, mtimes) both wake one reload
thread; the poll catches what watchdog misses (NFS, bind mounts,
Kubernetes `..data` symlink swaps). A failed load leaves the active policy
serving and shows in `/status` as `lastError`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from aivault_ops.bundle.source import BundleRef
from aivault_ops.errors import AivaultError
from aivault_ops.runtime.bundles.loader import BundleDirectory, Loaded, Loader, RollbackRefused
from aivault_ops.runtime.bundles.state import RuntimeState, SerialFloor
from aivault_ops.runtime.heap import PeriodicTrim, release_free_memory
from aivault_ops.runtime.observe.metrics import Metrics

Log = Callable[..., None]
# Events of one publish arrive within a few ms (temp file, link, unlink); the
# debounce only coalesces them. It was 0.2 s, which was 200 of the 215 ms p50
# publish → served (a load itself takes ~3 ms: verify 3, decrypt 0.7, build 1).
# A half-written file seen early is not lost: its next change rescans it.
DEBOUNCE_S: Final = 0.01


@dataclass
class Reloader:
    """Finds and activates the newest acceptable bundle; one scan at a time."""

    directory: BundleDirectory
    loader: Loader
    state: RuntimeState
    floor: SerialFloor
    metrics: Metrics
    log: Log
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._fingerprint: object = None
        # What a scan remembers between scans stays bounded by the directory: only
        # refusals are kept (an activated bundle is skipped by its serial), and only
        # for names still listed. Kept for every bundle, a set grew with each reload.
        self._refused: set[tuple[str, str]] = set()
        self._reported: set[str] = set()

    def scan(self) -> None:
        """Load the newest new bundle if the directory changed; never raises."""
        with self._lock:
            try:
                fingerprint = self.directory.fingerprint()
            except OSError as error:
                self._failed(f"{self.directory.directory}: cannot list: {error.strerror}")
                return
            if fingerprint == self._fingerprint:
                return
            self._fingerprint = fingerprint
            try:
                self._scan_refs(self.directory.list())
            except Exception as error:
                self._failed(f"internal error while loading ({type(error).__name__})")
            release_free_memory()

    def _scan_refs(self, refs: list[BundleRef]) -> None:
        listed = {ref.name for ref in refs}
        self._refused = {key for key in self._refused if key[0] in listed}
        self._reported &= listed
        policy = self.state.record.policy
        active = policy.serial if policy is not None else None
        errors: list[str] = []
        for ref in reversed(refs):
            error = self._try(ref, active, errors)
            if error is None:
                return
            if error:
                errors.append(error)
        if errors:
            self.state.failed(errors[0], self.clock())

    def _try(self, ref: BundleRef, active: int | None, passed_over: list[str]) -> str | None:
        """None when `ref` was activated, "" when skipped, else why it was refused."""
        error = self._attempt(ref, active, passed_over)
        if error:
            self.metrics.reload("error")
            self.log("bundle_refused", error=error)
        return error

    def _attempt(self, ref: BundleRef, active: int | None, passed_over: list[str]) -> str | None:
        if active is not None and ref.serial <= active:
            return self._stale(ref, active)
        try:
            data = self.directory.read(ref)
        except AivaultError as error:
            return f"{ref.name}: {error.diagnostics()}"
        key = (ref.name, hashlib.sha256(data).hexdigest())
        if key in self._refused:
            return ""
        try:
            loaded = self.loader.load(ref, data, floor=self.floor.read(), active=active)
            self.floor.write(loaded.floor)
        except AivaultError as error:
            self._refused.add(key)
            return f"{ref.name}: {error.diagnostics()}"
        except OSError as error:
            self._refused.add(key)
            return f"{ref.name}: cannot persist the serial floor: {error.strerror}"
        self._activate(ref, loaded, passed_over[0] if passed_over else None)
        return None

    def _stale(self, ref: BundleRef, active: int) -> str:
        """Report an older bundle once (without reading it); the active one is skipped."""
        if ref.serial == active or ref.name in self._reported:
            return ""
        self._reported.add(ref.name)
        stale = RollbackRefused(f"serial {ref.serial} is not newer than the active {active}")
        return f"{ref.name}: {stale.diagnostics()}"

    def _activate(self, ref: BundleRef, loaded: Loaded, passed_over: str | None) -> None:
        self.state.activated(loaded.policy, self.clock(), passed_over)
        self.metrics.reload("ok")
        announce_activation(self.log, ref.name, loaded)

    def _failed(self, message: str) -> None:
        self.state.failed(message, self.clock())
        self.metrics.reload("error")
        self.log("bundle_refused", error=message)


def announce_activation(log: Log, name: str, loaded: Loaded, **extra: object) -> None:
    """Log the activation, and a warning per secret still holding `init`'s placeholder."""
    problems = loaded.policy.problems()
    log("bundle_activated", bundle=name, serial=loaded.floor.serial, problems=problems, **extra)
    for secret in loaded.placeholders:
        secret_name = secret.rpartition("#")[2]
        log(
            "warning",
            detail=f"secret {secret} still holds the placeholder `init` wrote;"
            f" set the real value with `aivault-ops secrets set {secret_name}`",
        )


class BundleWatcher(Protocol):
    """What the process starts after binding and stops on shutdown."""

    def start(self) -> None:
        """Start watching or polling in the background."""
        ...

    def stop(self) -> None:
        """Stop, waiting (bounded) for the background thread."""
        ...


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Wake the reload thread on any change in the directory."""
        if event.event_type in ("created", "moved", "modified", "deleted", "closed"):
            self._event.set()


class ReloadThread:
    """Runs `Reloader.scan` on watchdog events (debounced) and every `poll_interval`;
    between loads, hands freed heap back to the OS now and then (`PeriodicTrim`)."""

    def __init__(self, reloader: Reloader, poll_interval: float) -> None:
        self._reloader = reloader
        self._interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aivault-reload", daemon=True)
        self._observer: Any = None
        self._trim = PeriodicTrim()

    def start(self) -> None:
        """Start watching; a directory watchdog cannot watch still gets polled."""
        try:
            observer = Observer()
            observer.schedule(_Wake(self._wake), str(self._reloader.directory.directory))
            observer.start()
            self._observer = observer
        except OSError as error:
            self._reloader.log("watch_unavailable", error=str(error.strerror), fallback="poll")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(self._interval):
                self._stop.wait(DEBOUNCE_S)
                self._wake.clear()
            if not self._stop.is_set():
                self._reloader.scan()
                self._trim.tick()

    def stop(self) -> None:
        """Stop watching and polling."""
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
