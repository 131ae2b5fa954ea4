"""An in-process runtime for the auth e2e tests, checked for leaked secrets when it stops."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from support.inprocess import InProcessRuntime
from support.runtime_proc import scan_tree


def assert_clean(response: httpx.Response, secrets: Iterable[str]) -> httpx.Response:
    """No secret in the response's body or headers; returns the response."""
    for secret in secrets:
        assert secret not in response.text
        assert all(secret not in f"{k}: {v}" for k, v in response.headers.multi_items())
    return response


@contextmanager
def running(
    tmp_path: Path, options: dict[str, Any], secrets: Iterable[str], *, name: str = "state"
) -> Iterator[InProcessRuntime]:
    """Start on `tmp_path/bundles`; afterwards no secret may be in the log or the state dir.

    `secrets` is read when the runtime has stopped, so a list the test keeps
    adding to (tokens issued meanwhile) is checked in full.
    """
    runtime = InProcessRuntime(tmp_path / "bundles", tmp_path / name, options).start()
    try:
        yield runtime
    finally:
        assert runtime.stop() == 0
    log = runtime.log()
    for secret in secrets:
        assert secret not in log, "a secret leaked into a log line"
        assert scan_tree(tmp_path / name, secret) == [], "a secret leaked into the state dir"
