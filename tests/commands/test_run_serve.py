"""`run_serve` called in-process: it serves until SIGTERM, on TCP and a unix socket.

The runtime runs in this (the main) thread as `serve` runs it; a helper thread
waits until it answers, then sends this process SIGTERM, which the runtime's
own handler turns into a graceful stop.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import BundleFactory
from support.fixtures import factory
from support.runtime_proc import free_port

from aivault_ops.commands.serve import run_serve
from aivault_ops.errors import UsageError
from aivault_ops.runtime.options import RuntimeOptions

__all__ = ["factory"]


def options(tmp_path: Path, factory: BundleFactory, **changes: Any) -> RuntimeOptions:
    values: dict[str, Any] = {
        "bundle_dir": tmp_path / "bundles",
        "trust": [factory.trust],
        "identity": factory.identity,
        "state_dir": tmp_path / "state",
        "poll_interval": 0.5,
        "header_timeout": 5.0,
        "keepalive_timeout": 5.0,
        "body_timeout": 5.0,
        "shutdown_grace": 1.0,
        "upstream_body_timeout": 5.0,
    }
    (tmp_path / "bundles").mkdir(exist_ok=True)
    return RuntimeOptions(**{**values, **changes})


def serve_until_answered(
    probe: Callable[[], httpx.Response], serve: Callable[[], int]
) -> tuple[int, list[httpx.Response]]:
    """Run `serve` here; from a thread, `probe` it until it answers, then SIGTERM us."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # one sent too early is dropped
    answers: list[httpx.Response] = []
    done = threading.Event()

    def stop_when_answering() -> None:
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            try:
                answers.append(probe())
            except httpx.TransportError:
                done.wait(0.05)
                continue
            os.kill(os.getpid(), signal.SIGTERM)
            done.wait(0.5)

    stopper = threading.Thread(target=stop_when_answering)
    stopper.start()
    try:
        code = serve()
    finally:
        done.set()
        stopper.join()
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    return code, answers


def test_serves_tcp_and_a_unix_socket_until_sigterm_then_reuses_the_stale_socket(
    tmp_path: Path, factory: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert threading.current_thread() is threading.main_thread()  # signals need it
    runtime = options(tmp_path, factory)
    factory.publish(runtime.bundle_dir, 1)
    port, sock = free_port(), tmp_path / "rt.sock"

    def probe() -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)

    code, answers = serve_until_answered(
        probe,
        lambda: run_serve(options=runtime, listen=f"127.0.0.1:{port}", socket=sock),
    )
    assert code == 0
    assert answers[0].json()["serial"] == 1
    log = capsys.readouterr().err
    assert f'"address": "127.0.0.1:{port}"' in log
    assert f'"socket": "{sock}"' in log
    assert '"event": "stopping"' in log
    assert sock.is_socket() and sock.stat().st_mode & 0o777 == 0o600  # stays until next start

    def probe_socket() -> httpx.Response:
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport) as client:
            return client.get("http://runtime/healthz", timeout=2)

    (tmp_path / "empty").mkdir()
    empty = options(tmp_path, factory, bundle_dir=tmp_path / "empty")
    code, answers = serve_until_answered(
        probe_socket, lambda: run_serve(options=empty, socket=sock, log_format="text")
    )
    assert (code, answers[0].json()) == (0, {"ok": True})
    log = capsys.readouterr().err
    assert "no valid bundle yet" in log
    assert "127.0.0.1:" not in log  # a socket alone: no TCP listener


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bundle_dir": Path("missing")}, "not a directory"),
        ({"poll_interval": 0.0}, "--poll-interval must be positive"),
        ({"header_timeout": 0.0}, "--header-timeout must be positive"),
        ({"keepalive_timeout": -1.0}, "--keepalive-timeout must be positive"),
        ({"body_timeout": 0.0}, "--body-timeout must be positive"),
        ({"shutdown_grace": 0.0}, "--shutdown-grace must be positive"),
        ({"max_connections": 0}, "--max-connections must be at least 1"),
        ({"upstream_body_timeout": 0.0}, "--upstream-body-timeout must be positive"),
        ({"upstream_max_connections": 0}, "--upstream-max-connections must be at least 1"),
        ({"upstream_max_per_host": -1}, "--upstream-max-per-host must be at least 1"),
        ({"upstream_queue_timeout": 0.0}, "--upstream-queue-timeout must be positive"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_a_bad_option_is_refused_and_the_listener_released(
    tmp_path: Path, factory: BundleFactory, change: dict[str, Any], message: str
) -> None:
    port = free_port()
    if "bundle_dir" in change:
        change = {"bundle_dir": tmp_path / "missing"}
    with pytest.raises(UsageError, match=message):
        run_serve(options=options(tmp_path, factory, **change), listen=f"127.0.0.1:{port}")
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again
