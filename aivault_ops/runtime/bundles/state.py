"""The runtime's state directory and what lives in it between restarts.

`<state-dir>/serial-floor.json` holds the serial (and sha256) of the last
bundle accepted, written atomically; `RuntimeState` is the one mutable
reference to the active policy, swapped whole on reload.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from aivault_ops.atomic_write import replace_file
from aivault_ops.errors import AivaultError
from aivault_ops.runtime.observe.health import Components
from aivault_ops.runtime.policy.active import ActivePolicy

APP_NAME: Final = "aivault-ops"
FLOOR_FILE: Final = "serial-floor.json"


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/aivault-ops`, else `~/.local/state/aivault-ops`."""
    base = environ.get("XDG_STATE_HOME")
    if base:
        return Path(base) / APP_NAME
    return Path(environ.get("HOME") or Path.home()) / ".local" / "state" / APP_NAME


def prepare_state_dir(path: Path) -> Path:
    """Create the state dir (mode 0700) if needed; refuse one others can write to."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = path.stat().st_mode
    except OSError as error:
        raise AivaultError(f"{path}: cannot create the state dir: {error.strerror}") from None
    if mode & 0o022:
        raise AivaultError(
            f"{path}: the state dir is writable by others", hint=f"run `chmod 700 {path}`"
        )
    return path


@dataclass(frozen=True)
class Floor:
    """The last accepted bundle: its serial and the sha256 of its bytes."""

    serial: int
    sha256: str


class SerialFloor:
    """The persisted serial floor: no rollback, even across restarts."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FLOOR_FILE

    def read(self) -> Floor | None:
        """The floor, or None before the first accepted bundle.

        A corrupt floor file is an error, not "no floor": failing open here
        would allow a rollback.
        """
        try:
            data = json.loads(self.path.read_bytes())
            return Floor(serial=_int(data["serial"]), sha256=str(data["sha256"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise AivaultError(
                f"{self.path}: unreadable serial floor",
                hint="restore it, or remove it only if you accept a possible rollback",
            ) from None

    def write(self, floor: Floor) -> None:
        """Raise the floor atomically (temp file, fsync, rename, fsync the dir).

        Never lowers it: under an exclusive lock the current floor is re-read,
        so runtimes sharing a state dir cannot race it back down.
        """
        lock = os.open(self.path.with_name(".serial-floor.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            if current is not None and current.serial > floor.serial:
                return
            data = json.dumps({"serial": floor.serial, "sha256": floor.sha256}).encode()
            replace_file(self.path, data, sync_dir=True)
        finally:
            os.close(lock)


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("bad serial")
    return value


@dataclass(frozen=True)
class LoadRecord:
    """What the runtime knows about its loads, for `/status`."""

    policy: ActivePolicy | None = None
    loaded_at: datetime | None = None
    last_attempted: datetime | None = None
    last_error: str | None = None


class RuntimeState:
    """The one reference to the active policy, swapped whole.

    Readers take `record` once per request and keep that policy to the end;
    the reload thread replaces the record under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.record = LoadRecord()
        self.components = Components()  # bundle source, rate-limit store: shown in /status

    def activated(self, policy: ActivePolicy, now: datetime, error: str | None = None) -> None:
        """Make `policy` the active one (`error`: why a newer bundle was passed over)."""
        with self._lock:
            self.record = LoadRecord(policy, now, now, error)

    def failed(self, error: str, now: datetime) -> None:
        """Record a failed load; the active policy stays."""
        with self._lock:
            old = self.record
            self.record = LoadRecord(old.policy, old.loaded_at, now, error)
