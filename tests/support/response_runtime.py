"""A runtime (subprocess or in-process) in front of the scripted upstream, for response tests.

`serving` publishes one signed bundle with the given capability limits,
starts the runtime, and on exit stops it and asserts the canary secret is in
no log line and no file of the state dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.inprocess import InProcessRuntime
from support.runtime_proc import RuntimeProcess, scan_tree
from support.scripted_upstream import ScriptedUpstream, scripted_upstream

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Runtime = RuntimeProcess | InProcessRuntime


def _start(kind: str, root: Path, factory: BundleFactory, upstream: ScriptedUpstream) -> Runtime:
    if kind == "subprocess":
        args = ["--identity", str(factory.identity), "--trust", factory.trust]
        args += ["--dev-resolve", upstream.dev_resolve(), "--dev-ca-cert", str(upstream.ca_file)]
        log = root / "runtime.log"
        return RuntimeProcess(root / "bundles", root / "state", log, args).start()
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
    }
    return InProcessRuntime(root / "bundles", root / "state", options).start()


@dataclass
class Served:
    """A running runtime and the directory holding its bundles and state."""

    runtime: Runtime
    root: Path

    @property
    def url(self) -> str:
        """The runtime's base URL."""
        return self.runtime.url


@contextmanager
def serving(
    kind: str,
    root: Path,
    factory: BundleFactory,
    upstream: ScriptedUpstream,
    limits: dict[str, Any],
) -> Iterator[Served]:
    """A runtime serving bundle 1 (`my-api/users` with `limits`), checked for leaks after."""
    (root / "bundles").mkdir(parents=True)
    factory.publish(root / "bundles", 1, limits=limits)
    runtime = _start(kind, root, factory, upstream)
    try:
        yield Served(runtime, root)
    finally:
        assert runtime.stop() == 0
        assert CANARY not in runtime.log(), "the secret leaked into a log line"
        assert scan_tree(root / "state", CANARY) == [], "the secret leaked into the state dir"


def clean(response: httpx.Response) -> httpx.Response:
    """Assert the canary is in no header and not in the body; return the response."""
    assert CANARY.encode() not in response.content
    assert all(CANARY not in f"{k}: {v}" for k, v in response.headers.multi_items())
    return response


def passthrough(runtime: Served, path: str) -> httpx.Response:
    """GET `/v/my-api/v1/users/<path>` with the consumer token (not decoded by httpx)."""
    url = f"{runtime.url}/v/my-api/v1/users/{path}"
    return clean(httpx.get(url, headers=AUTH, timeout=30))


def envelope(runtime: Served, path: str) -> httpx.Response:
    """The same GET through `POST /aivault/proxy`."""
    route, _, query = path.partition("?")
    pairs = dict(part.split("=", 1) for part in query.split("&") if part)
    request = {"method": "GET", "path": f"/v1/users/{route}", "query": pairs}
    body = {"capability": "my-api/users", "request": request}
    return clean(httpx.post(runtime.url + "/aivault/proxy", json=body, headers=AUTH, timeout=30))


def refusal(response: httpx.Response, status: int, code: str) -> str:
    """Assert a JSON refusal with `status` and `code`; its message."""
    assert response.status_code == status, response.text
    data = response.json()
    assert set(data) == {"error", "message"}
    assert data["error"] == code, data
    message: str = data["message"]
    return message


def audit_lines(root: Path) -> list[dict[str, Any]]:
    """Every audit record the runtime under `root` wrote, oldest first."""
    files = sorted((root / "state" / "audit").glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def read_cut(runtime: Served, path: str) -> tuple[int, bytes]:
    """Stream a passthrough response that the runtime cuts: its status and the bytes
    that arrived before the connection closed without the final chunk."""
    url = f"{runtime.url}/v/my-api/v1/users/{path}"
    received = bytearray()
    with httpx.stream("GET", url, headers=AUTH, timeout=30) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
        assert CANARY.encode() not in received
        return response.status_code, bytes(received)


def upstream_fixture() -> Any:
    """A module fixture `upstream`: one scripted TLS upstream shared by the module's tests."""

    @pytest.fixture(scope="module")
    def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedUpstream]:
        with scripted_upstream(tmp_path_factory.mktemp("scripted")) as running:
            yield running

    return upstream


def runtime_fixture(label: str, policy: dict[str, Any], *, scope: str = "module") -> Any:
    """A fixture `runtime`: the runtime, as a subprocess and in-process, with `policy`."""

    @pytest.fixture(scope=scope, params=["subprocess", "inprocess"])  # type: ignore[call-overload]
    def runtime(
        request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory,
        factory: BundleFactory,
        upstream: ScriptedUpstream,
    ) -> Iterator[Served]:
        root = tmp_path_factory.mktemp(f"{label}-{request.param}")
        with serving(request.param, root, factory, upstream, policy) as served:
            yield served

    return runtime
