"""`run_dev_upstream` called in-process: HTTPS for the given hosts, an echo of each request."""

from __future__ import annotations

import json
import shlex
import socket
import ssl
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from support.runtime_proc import wait_until

from aivault_ops import dev_upstream
from aivault_ops.commands.dev_upstream import run_dev_upstream


def https_request(port: int, ca: Path, host: str, request: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_serves_https_for_each_host_echoes_requests_and_prints_the_serve_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    servers: list[ThreadingHTTPServer] = []
    real_start = dev_upstream.start_server

    def start_and_keep(files: dev_upstream.ServerFiles, port: int = 0) -> ThreadingHTTPServer:
        servers.append(real_start(files, port))  # a handle to stop it, as Ctrl-C would
        return servers[-1]

    monkeypatch.setattr(dev_upstream, "start_server", start_and_keep)
    codes: list[int] = []
    directory = tmp_path / "certs"
    hosts = ["api.example.com", "127.0.0.1"]
    thread = threading.Thread(
        target=lambda: codes.append(run_dev_upstream(hosts=hosts, directory=directory))
    )
    thread.start()
    try:
        wait_until(lambda: bool(servers), what="dev upstream")
        port = servers[0].server_address[1]
        for host in hosts:
            answer = https_request(
                port, directory / "ca.pem", host,
                b"POST /v1/x?a=1 HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
                b"Authorization: Bearer dev-key\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\nabc",
            )  # fmt: skip
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            echoed = json.loads(body)
            assert (echoed["method"], echoed["path"], echoed["bodyBytes"]) == (
                "POST",
                "/v1/x?a=1",
                3,
            )
            assert echoed["echoedHeaders"]["Authorization"] == "Bearer dev-key"
    finally:
        for server in servers:
            server.shutdown()
        thread.join(timeout=30)
    assert codes == [0]
    out, err = capsys.readouterr()
    first, second = out.splitlines()
    assert (
        first
        == f"dev upstream (DEVELOPMENT ONLY) on https://127.0.0.1:{port} for {', '.join(hosts)}"
    )
    assert shlex.split(second.removeprefix("pass to `aivault-ops serve`: ")) == [
        "--dev-resolve", f"api.example.com=127.0.0.1:{port}",
        "--dev-resolve", f"127.0.0.1=127.0.0.1:{port}",
        "--dev-ca-cert", str(directory / "ca.pem"),
    ]  # fmt: skip
    assert err.count("upstream received POST /v1/x?a=1 authorization='Bearer dev-key'") == 2
    assert (directory / "server-key.pem").stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700


def test_the_default_directory_is_a_new_private_temporary_directory() -> None:
    first, second = dev_upstream.default_directory(), dev_upstream.default_directory()
    try:
        assert first != second
        assert first.name.startswith("aivault-dev-upstream-")
        assert first.stat().st_mode & 0o777 == 0o700
    finally:
        first.rmdir()
        second.rmdir()
