"""The cross-process refresh lock: one token request at a time per credential, across workers.

`fcntl.flock` on `<state-dir>/oauth2/<credential>.lock`, taken without
blocking and retried every few milliseconds, so the event loop never waits
on it and the caller's deadline (an `asyncio.timeout` around the refresh)
bounds the wait. Each hold opens the file anew: flock locks belong to an
open file description, so two holders in one process exclude each other
too. The lock is released when the descriptor is closed, also when the
process dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final

from aivault_ops.runtime.auth.oauth2.files import open_lock_file

POLL_S: Final = 0.01


class RefreshLock:
    """The lock file of one credential."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Wait (polling, cancellable) until this process holds the lock."""
        fd = open_lock_file(self.path)
        try:
            while not _try_lock(fd):
                await asyncio.sleep(POLL_S)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def held_now(self) -> Iterator[bool]:
        """Hold the lock if it is free right now: yields whether it is held."""
        fd = open_lock_file(self.path)
        try:
            yield _try_lock(fd)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"RefreshLock({self.path.name!r})"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
