"""Hostile callers on raw sockets against a real runtime subprocess.

Malformed HTTP gets a JSON 400 and one structured log line without the
request bytes (the token among them); idle, trickling and surplus
connections are closed or refused within bounds; and a runtime whose
descriptors run out never sends a request upstream without its audit line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import RecordingUpstream

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOUND_S = 8.0  # an upper bound for "closed promptly", never a measurement
GOOD_HEAD = f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"

MALFORMED = {
    "bare LF line endings": f"GET /v/my-api/v1/users HTTP/1.1\n{GOOD_HEAD.replace(chr(13), '')}\n",
    "duplicate Content-Length": (
        f"POST /aivault/proxy HTTP/1.1\r\n{GOOD_HEAD}Content-Length: 2\r\n"
        "Content-Length: 3\r\n\r\n{}"
    ),
    "Content-Length with Transfer-Encoding": (
        f"POST /aivault/proxy HTTP/1.1\r\n{GOOD_HEAD}Content-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "obs-fold": f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}X-Note: a\r\n b\r\n\r\n",
    "over-long request line": f"GET /v/my-api/{'a' * 20000} HTTP/1.1\r\n{GOOD_HEAD}\r\n",
    "lowercase method": f"get /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}\r\n",
    "NUL in a header value": f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}X-A: a\x00b\r\n\r\n",
    "space before the colon": f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}X-A : b\r\n\r\n",
    "bad chunk size": (
        f"POST /aivault/proxy HTTP/1.1\r\n{GOOD_HEAD}Transfer-Encoding: chunked\r\n\r\n"
        "zz\r\n{}\r\n0\r\n\r\n"
    ),
    "unknown HTTP version": f"GET /v/my-api/v1/users HTTP/7.1\r\n{GOOD_HEAD}\r\n",
    "too many headers": (
        f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}"
        + "".join(f"X-H{i}: {i}\r\n" for i in range(200))
        + "\r\n"
    ),
    "over-long header": f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}X-A: {'b' * 20000}\r\n\r\n",
    "not HTTP at all": f"\x16\x03\x01\x02\x00{TOKEN}\r\n\r\n",
}


def exchange(runtime: RuntimeProcess, data: bytes, timeout: float = BOUND_S) -> bytes:
    """Send `data`, read until the runtime closes the connection (bounded)."""
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.fixture
def runtime(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> RuntimeProcess:
    factory.publish(bundle_dir, 1, limits={"maxRequestBodyBytes": 1024})
    return start_runtime("--header-timeout", "0.5", "--body-timeout", "0.5")


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_http_gets_a_json_400_and_one_quiet_log_line(
    runtime: RuntimeProcess, upstream: RecordingUpstream, name: str
) -> None:
    answer = exchange(runtime, MALFORMED[name].encode("latin-1"))
    status, headers, body = parse(answer)
    assert (status, headers["content-type"]) == (400, "application/json")
    assert body == {"error": "E-BAD-REQUEST", "message": "malformed HTTP request"}
    assert TOKEN.encode() not in answer
    log = runtime.log()
    assert TOKEN not in log and "Traceback" not in log
    [line] = [json.loads(x) for x in log.splitlines() if '"bad_request"' in x]
    assert set(line) == {"ts", "event", "status", "error"}
    assert upstream.seen == []
    assert httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH).status_code == 200


def closed_within(sock: socket.socket, bound: float, trickle: bytes = b"") -> bool:
    """True when the runtime closes `sock` before `bound` seconds, while we send
    `trickle` one byte every 0.1 s."""
    deadline = time.monotonic() + bound
    sock.settimeout(0.1)
    for index in range(int(bound / 0.1) + 1):
        if index < len(trickle):
            try:
                sock.sendall(trickle[index : index + 1])
            except OSError:
                return True
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            pass
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
    return False


def test_a_silent_connection_is_closed_by_the_header_timeout(runtime: RuntimeProcess) -> None:
    with socket.create_connection(("127.0.0.1", runtime.port)) as sock:
        assert closed_within(sock, BOUND_S)
    assert '"event": "header_timeout"' in runtime.log()


def test_a_trickled_head_is_closed_by_the_header_timeout(runtime: RuntimeProcess) -> None:
    head = f"GET /v/my-api/v1/users HTTP/1.1\r\n{GOOD_HEAD}X-Pad: {'a' * 200}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", runtime.port)) as sock:
        assert closed_within(sock, BOUND_S, trickle=head.encode())


def test_a_trickled_body_is_refused_with_408_and_nothing_is_sent(
    runtime: RuntimeProcess, upstream: RecordingUpstream
) -> None:
    head = f"POST /aivault/proxy HTTP/1.1\r\n{GOOD_HEAD}Content-Length: 500\r\n\r\n{{"
    answer = exchange(runtime, head.encode())
    status, _, body = parse(answer)
    assert (status, body["error"]) == (408, "E-REQUEST-TIMEOUT")
    assert body["message"] == "the request body did not arrive within 0.5 s"
    assert upstream.seen == []


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port)))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_connections_past_the_cap_are_refused_cheaply(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime("--max-connections", "4", "--header-timeout", "30")
    with idle_connections(runtime.port, 4):  # accepted in order, before the next one
        status, headers, body = parse(exchange(runtime, b""))
        assert (status, headers["connection"]) == (503, "close")
        assert body == {
            "error": "E-TOO-MANY-CONNECTIONS",
            "message": "the runtime has too many open connections; retry later",
        }
    wait_until(lambda: answers(runtime) == 200, what="a slot for a real caller")


def answers(runtime: RuntimeProcess) -> int:
    return httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH).status_code


def idle(sock: socket.socket) -> bool:
    """True while the runtime holds `sock` open without answering; False once it
    answered (a refusal), closed or reset it (libuv drops connections it cannot accept
    for want of descriptors)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def descriptors(runtime: RuntimeProcess) -> int:
    assert runtime.process is not None
    return len(os.listdir(f"/proc/{runtime.process.pid}/fd"))


def audit_lines(state: Path) -> list[dict[str, Any]]:
    files = sorted((state / "audit").glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_bytes().splitlines()]


def test_descriptor_exhaustion_never_sends_unaudited_and_recovers(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    """The reported reproduction: RLIMIT_NOFILE 256, idle connections until the runtime
    holds every descriptor (the cap raised past the limit on purpose), one freed, a
    request, then everything freed. Before the fix the audit lock stayed broken: 500s
    for ever, calls still sent upstream, no audit line."""
    factory.publish(bundle_dir, 1)
    limit = 256
    runtime = start_runtime(
        "--max-connections", "1000", "--header-timeout", "60", "--keepalive-timeout", "60",
        nofile=limit,
    )  # fmt: skip
    with idle_connections(runtime.port, limit + 20) as held:
        wait_until(lambda: descriptors(runtime) == limit, what="every descriptor taken")
        accepted = [sock for sock in held if idle(sock)]
        accepted[0].close()

        def one_free() -> None:
            # Each connection below needs the one free descriptor, which the previous
            # one holds until the runtime has closed it; without a descriptor, accept
            # takes the connection and drops it at once (libuv's EMFILE handling).
            wait_until(lambda: descriptors(runtime) < limit, what="one descriptor free")

        answers = []
        for headers in ({}, AUTH):  # no token, then a valid one
            one_free()
            answers.append(
                httpx.get(runtime.url + "/v/my-api/v1/users", headers=headers, timeout=BOUND_S)
            )
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "E-AUDIT-UNAVAILABLE"
        assert upstream.seen == []
        one_free()
        assert runtime.status()["state"] == "degraded"
    wait_until(lambda: descriptors(runtime) < limit // 2, what="idle connections released")
    for _ in range(3):
        assert httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH).status_code == 200
    assert len(upstream.seen) == 3
    lines = audit_lines(tmp_path / "state")
    assert [line["decision"] for line in lines].count("allow") == len(upstream.seen)
    assert [line["error"] for line in lines[:2]] == ["E-UNAUTHENTICATED", "E-AUDIT-UNAVAILABLE"]
    assert runtime.status()["state"] == "ready"
    log = runtime.log()
    assert "Traceback" not in log and CANARY not in log and TOKEN not in log


def test_the_default_cap_keeps_descriptors_for_the_audit_log_and_upstreams(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    """With the default cap, a flood of idle sockets under a 256-descriptor limit is
    refused before it can take the descriptors the audit log needs."""
    factory.publish(bundle_dir, 1)
    runtime = start_runtime("--header-timeout", "60", nofile=256)
    with idle_connections(runtime.port, 300) as held:
        wait_until(lambda: not all(idle(sock) for sock in held), what="refusals")
        assert descriptors(runtime) < 200
        refused = httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH)
        assert refused.json()["error"] == "E-TOO-MANY-CONNECTIONS"
    wait_until(lambda: answers(runtime) == 200, what="a slot for a real caller")
    assert runtime.status()["state"] == "ready"
    assert len(upstream.seen) == 1
