"""Multi-host registry providers and per-tenant wildcard hosts, end to end.

A policy repo made by `init`, with credentials of three built-in providers
whose capabilities live on different hosts (deepgram: api. and agent.;
linear: api. and uploads.; google-gmail's capabilities on gmail. and
people.) and two tenants of the wildcard provider shopify
(`*.myshopify.com`), each bound to its own host by its credential. Compiled
with the real CLI, served by a real runtime whose `--dev-resolve` sends
every one of those hosts to one local TLS echo server, which reports the
Host header each request arrived with: every capability must reach exactly
its own host, and each tenant its own shop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.runtime_proc import RuntimeProcess

from aivault_ops.dev_upstream import make_certificates, serve_flags, start_server

CANARY = "CANARY-multi-host-7Qx9"
TENANTS = ("acme.myshopify.com", "beta.myshopify.com")
EXPECTED_HOSTS = {
    "deepgram/models": ("GET", "/v1/models", "api.deepgram.com"),
    "deepgram/voice-agent": ("GET", "/v1/agent/settings", "agent.deepgram.com"),
    "linear/graphql": ("POST", "/graphql", "api.linear.app"),
    "linear/storage": ("GET", "/files/1", "uploads.linear.app"),
    "shopify/acme-admin": ("GET", "/admin/api/2024-01/shop.json", "acme.myshopify.com"),
    "shopify/beta-admin": ("GET", "/admin/api/2024-01/shop.json", "beta.myshopify.com"),
}
ALL_HOSTS = sorted({host for _, _, host in EXPECTED_HOSTS.values()})


def _host_header(echoed: dict[str, Any]) -> str:
    headers = {name.lower(): value for name, value in echoed["echoedHeaders"].items()}
    return str(headers["host"])


def _cli(*args: str | Path, cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "aivault_ops", *map(str, args)], cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _credential(name: str, provider: str, hosts: str = "") -> str:
    spec = f"  provider: {provider}\n" + (f"  hosts: [{hosts}]\n" if hosts else "")
    return f"apiVersion: aivault.dev/v1\nkind: Credential\nmetadata:\n  name: {name}\nspec:\n{spec}"


def _tenant_capability(tenant: str, credential: str) -> str:
    return (
        "apiVersion: aivault.dev/v1\nkind: Capability\n"
        f"metadata:\n  name: shopify/{tenant}-admin\n"
        f"spec:\n  credential: {credential}\n  allow:\n    methods: [GET]\n"
        "    pathPrefixes: [/admin/api/]\n    hosts: ['*.myshopify.com']\n"
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuntimeProcess, str]]:
    work = tmp_path_factory.mktemp("multi-host")
    init = _cli(
        "init", "vault.d", "--identity-out", "keys/id.txt", "--signing-key-out", "keys/sk.pem",
        cwd=work,
    )  # fmt: skip
    fields = dict(line.split(": ", 1) for line in init.splitlines() if ": " in line)
    token = fields["Consumer 'agent' token (shown once, store it now)"]
    public_key = fields["Signing public key (trust it in runtimes)"]
    root = work / "vault.d"
    _write(root / "credentials/deepgram.yaml", _credential("deepgram", "deepgram"))
    _write(root / "credentials/linear.yaml", _credential("linear", "linear"))
    for tenant, host in zip(("acme", "beta"), TENANTS, strict=True):
        _write(
            root / f"credentials/shop-{tenant}.yaml", _credential(f"shop-{tenant}", "shopify", host)
        )
        _write(
            root / f"capabilities/shop-{tenant}.yaml", _tenant_capability(tenant, f"shop-{tenant}")
        )
    consumer = root / "consumers/agent.yaml"
    consumer.write_text(
        consumer.read_text().replace('["example-api/*"]', '["deepgram/*", "linear/*", "shopify/*"]')
    )
    for name in ("DEEPGRAM_API_KEY", "LINEAR_API_KEY", "SHOPIFY_ACCESS_TOKEN"):
        _cli(
            "secrets",
            "set",
            name,
            "--file",
            "secrets/apis.sops.yaml",
            cwd=root,
            stdin=CANARY + name,
        )
    _cli("validate", "vault.d", cwd=work)
    (work / "bundles").mkdir()
    _cli("compile", "vault.d", "--out", work / "bundles/bundle-1.tar.gz", "--signing-key",
         work / "keys/sk.pem", cwd=work)  # fmt: skip
    (work / "tls").mkdir()
    files = make_certificates(ALL_HOSTS, work / "tls")
    upstream = start_server(files)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    runtime = RuntimeProcess(
        bundle_dir=work / "bundles", state_dir=work / "state", log_path=work / "runtime.log",
        args=["--identity", str(work / "keys/id.txt"), "--trust", public_key,
              *serve_flags(ALL_HOSTS, upstream.server_address[1], files.ca_cert)],
    )  # fmt: skip
    runtime.start()
    try:
        yield runtime, token
    finally:
        runtime.stop()
        upstream.shutdown()
        upstream.server_close()
        assert CANARY not in runtime.log()


@pytest.mark.parametrize("capability", sorted(EXPECTED_HOSTS))
def test_each_capability_reaches_its_own_host(
    served: tuple[RuntimeProcess, str], capability: str
) -> None:
    runtime, token = served
    method, path, host = EXPECTED_HOSTS[capability]
    response = httpx.post(
        runtime.url + "/aivault/proxy",
        headers={"authorization": f"Bearer {token}"},
        json={"capability": capability, "request": {"method": method, "path": path}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == 200
    echoed = json.loads(answer["body"])
    assert (_host_header(echoed), echoed["method"], echoed["path"]) == (host, method, path)
    assert CANARY not in response.text


def test_a_tenant_capability_never_reaches_the_other_tenant(
    served: tuple[RuntimeProcess, str],
) -> None:
    """Passthrough by credential: shop-acme's path goes to acme's shop only."""
    runtime, token = served
    response = httpx.get(
        runtime.url + "/v/shop-acme/admin/api/2024-01/orders.json",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert _host_header(response.json()) == "acme.myshopify.com"
