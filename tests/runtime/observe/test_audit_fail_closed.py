"""The runtime with a failing audit log: nothing goes upstream unaudited.

A real runtime (served in this process), a real TLS upstream that records
what it gets, and the audit log's system calls failing on purpose.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.inprocess import InProcessRuntime
from support.upstream import RecordingUpstream
from test_audit_faults import Faults

from aivault_ops.runtime.observe.audit import AuditLog
from aivault_ops.runtime.observe.audit_verify import verify_chain

AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNAVAILABLE = {
    "error": "E-AUDIT-UNAVAILABLE",
    "message": "the audit log cannot be written; nothing was sent upstream (see /status)",
}


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def runtime(
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
    faults: Faults,
) -> Iterator[InProcessRuntime]:
    factory.publish(bundle_dir, 1)
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
    }
    served = InProcessRuntime(bundle_dir, tmp_path / "state", options).start()
    served.process.runtime.audit = AuditLog(tmp_path / "state", ops=faults.ops())
    yield served
    assert served.stop() == 0
    assert CANARY not in served.log()


def audit_lines(state: Path) -> list[dict[str, Any]]:
    files = sorted((state / "audit").glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_bytes().splitlines()]


def invoke(runtime: InProcessRuntime) -> httpx.Response:
    return httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH)


@pytest.mark.parametrize(
    ("call", "code", "held"),
    [("open", errno.EMFILE, 3), ("fstatvfs", errno.EIO, 0)],  # statvfs: refusals still logged
)
def test_an_unwritable_audit_log_refuses_and_sends_nothing(
    runtime: InProcessRuntime,
    upstream: RecordingUpstream,
    faults: Faults,
    tmp_path: Path,
    call: str,
    code: int,
    held: int,
) -> None:
    faults.fail(call, code)
    for _ in range(3):
        response = invoke(runtime)
        assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert upstream.seen == []
    status = runtime.status()
    assert status["state"] == "degraded"
    assert status["lastError"].startswith("audit log unavailable: ")
    assert status["audit"]["ok"] is False and status["audit"]["heldLines"] == held
    metrics = httpx.get(runtime.url + "/metrics").text
    assert "aivault_audit_available 0" in metrics
    assert 'aivault_requests_total{capability="my-api/users",decision="error"} 3' in metrics

    faults.heal()
    assert invoke(runtime).status_code == 200
    assert len(upstream.seen) == 1
    lines = audit_lines(tmp_path / "state")
    assert [(x["decision"], x["error"]) for x in lines] == [
        ("error", "E-AUDIT-UNAVAILABLE"),
    ] * 3 + [("allow", None)]
    assert verify_chain(tmp_path / "state").ok
    assert runtime.status()["state"] == "ready"
    assert "aivault_audit_available 1" in httpx.get(runtime.url + "/metrics").text


def test_a_line_that_fails_after_the_upstream_answered_is_kept_and_the_answer_withheld(
    runtime: InProcessRuntime, upstream: RecordingUpstream, faults: Faults, tmp_path: Path
) -> None:
    """The check before sending passed, the write after it failed (the disk filled up
    in between): the caller gets a 503, the line of the call that went out is held and
    written before anything else is sent."""
    faults.fail("write", errno.ENOSPC)
    response = invoke(runtime)
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert len(upstream.seen) == 1
    assert CANARY not in response.text
    refused = invoke(runtime)  # the held line cannot be written: refuse before sending
    assert refused.status_code == 503 and len(upstream.seen) == 1
    faults.heal()
    assert invoke(runtime).status_code == 200
    lines = audit_lines(tmp_path / "state")
    assert [(x["decision"], x["status"]) for x in lines] == [
        ("allow", 200),
        ("error", 503),
        ("allow", 200),
    ]
    assert len(upstream.seen) == 2
    assert verify_chain(tmp_path / "state").ok


def test_a_lock_that_fails_once_recovers_on_the_next_request(
    runtime: InProcessRuntime, upstream: RecordingUpstream, faults: Faults, tmp_path: Path
) -> None:
    faults.fail("flock", errno.EIO, times=1)
    assert invoke(runtime).status_code == 503
    assert invoke(runtime).status_code == 200
    assert [x["decision"] for x in audit_lines(tmp_path / "state")] == ["allow", "allow"]
    assert len(upstream.seen) == 2


def test_an_unexpected_error_mid_stream_is_audited_once_and_cuts_the_stream(
    runtime: InProcessRuntime,
    upstream: RecordingUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aivault_ops.runtime.http import server

    real = server.redacted_stream

    def breaking(*args: Any, **kwargs: Any) -> Any:
        async def chunks() -> Any:
            async for chunk in real(*args, **kwargs):
                yield chunk
                raise ValueError("boom")

        return chunks()

    monkeypatch.setattr(server, "redacted_stream", breaking)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", runtime.url + "/v/my-api/v1/users/sse", headers=AUTH) as response,
    ):
        assert response.status_code == 200
        upstream.sse_release.set()
        response.read()
    [line] = audit_lines(tmp_path / "state")
    assert (line["decision"], line["error"], line["status"]) == ("error", "E-INTERNAL", 200)
    assert '"event": "internal_error", "error": "ValueError"' in runtime.log()
    assert "Traceback" not in runtime.log()
