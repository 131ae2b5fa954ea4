"""Each command's `from_args` adapter: every option reaches the typed function, by name.

The typed function is replaced by a recorder: what is under test is only the
mapping from the parsed command line to its keyword arguments.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.commands.capabilities import Source
from aivault_ops.commands.invoke import CallOptions
from aivault_ops.main import main
from aivault_ops.runtime.options import RuntimeOptions

P = Path
CASES: list[tuple[list[str], str, dict[str, Any]]] = [
    (
        ["compile", "d", "--out", "o", "--signing-key", "k", "--env", "prod", "--serial", "3",
         "--revision", "r", "--expires-in", "2h"],
        "compile.run_compile",
        {"repo": P("d"), "out": P("o"), "signing_key": P("k"), "environment": "prod",
         "serial": 3, "revision": "r", "expires_in": timedelta(hours=2)},
    ),
    (
        ["compile", "--out", "o", "--signing-key", "k"],
        "compile.run_compile",
        {"repo": None, "out": P("o"), "signing_key": P("k"), "environment": None, "serial": 1,
         "revision": None, "expires_in": None},
    ),
    (
        ["validate", "a", "b/c.yaml", "--env", "e", "--json"],
        "validate.run_validate",
        {"paths": [P("a"), P("b/c.yaml")], "environment": "e", "as_json": True},
    ),
    (
        ["plan", "--target", "t", "--trust", "k1", "k2", "--trust", "k3", "--json", "--explain"],
        "plan.run_plan",
        {"repo": None, "target": P("t"), "environment": None, "trust": ["k1", "k2", "k3"],
         "as_json": True, "plain_http": False, "explain": True},
    ),
    (
        ["apply", "d", "--target", "t", "--signing-key", "k", "--env", "e", "--expires-in", "1d",
         "--trust", "k1", "--revision", "r", "--dry-run", "--always"],
        "apply.run_apply",
        {"repo": P("d"), "target": P("t"), "signing_key": P("k"), "environment": "e",
         "expires_in": timedelta(days=1), "trust": ["k1"], "revision": "r", "dry_run": True,
         "always": True, "plain_http": False},
    ),
    (
        ["capabilities", "list", "--registry", "--json"],
        "capabilities.run_list",
        {"source": Source(registry=True, trust=[]), "as_json": True},
    ),
    (
        ["capabilities", "describe", "c/x", "d", "--env", "e", "--bundle", "b", "--trust", "k"],
        "capabilities.run_describe",
        {"name": "c/x", "source": Source(P("d"), "e", False, P("b"), ["k"]), "as_json": False},
    ),
    (
        ["audit", "verify", "--state-dir", "s", "--json"],
        "audit.run_audit_verify",
        {"state_dir": P("s"), "as_json": True},
    ),
    (
        ["dev-upstream", "--host", "a.example", "--host", "b.example", "--port", "5", "--dir", "d"],
        "dev_upstream.run_dev_upstream",
        {"hosts": ["a.example", "b.example"], "port": 5, "directory": P("d")},
    ),
    (
        ["dev-upstream"],
        "dev_upstream.run_dev_upstream",
        {"hosts": ["api.example.com"], "port": 0, "directory": None},
    ),
    (
        ["init", "--recipient", "age1x", "--signing-key-out", "s", "--name", "n", "--force"],
        "init.run_init",
        {"directory": P("vault.d"), "identity_out": None, "recipient": "age1x",
         "signing_key_out": P("s"), "name": "n", "force": True},
    ),
    (
        ["invoke", "c/x", "--method", "post", "--path", "/p?a=1", "--query", "q=1", "--header",
         "h=v", "--json", "{}", "--runtime", "unix:/s", "--token", "t", "--output", "json"],
        "invoke.run_invoke",
        {"call": CallOptions("c/x", "post", "/p?a=1", ["q=1"], ["h=v"], None, None, "{}"),
         "runtime": "unix:/s", "token": "t", "output": "json", "directory": None},
    ),
    (
        ["invoke", "c/x", "--body-file", "f"],
        "invoke.run_invoke",
        {"call": CallOptions("c/x", body_file=P("f"), query=[], headers=[]), "runtime": None,
         "token": None, "output": "body", "directory": None},
    ),
    (
        ["invoke", "c/x", "--dir", "d"],
        "invoke.run_invoke",
        {"call": CallOptions("c/x", query=[], headers=[]), "runtime": None, "token": None,
         "output": "body", "directory": P("d")},
    ),
    (
        ["secrets", "create", "--name", "N", "--file", "f", "--value", "v", "--scope", "global",
         "--identity", "i", "--json"],
        "secrets.run_create",
        {"name": "N", "file": P("f"), "value": "v", "scope": "global", "identity": P("i"),
         "as_json": True},
    ),
    (
        ["capability", "create", "p/c", "--provider", "p", "--credential", "c", "--method", "GET",
         "--method", "POST", "--path", "/a", "--host", "h", "--replace", "--dir", "d",
         "--operation", "DynamoDB_20120810.GetItem", "--copy-source", "/b/"],
        "capability.run_create",
        {"name": "p/c", "provider": "p", "credential": "c", "methods": ["GET", "POST"],
         "path_prefixes": ["/a"], "hosts": ["h"], "replace": True, "directory": P("d"),
         "operations": ["DynamoDB_20120810.GetItem"], "copy_source_prefixes": ["/b/"]},
    ),
    (
        ["keys", "signing", "--out", "o", "--force", "--json"],
        "keys.run_signing",
        {"out": P("o"), "force": True, "as_json": True},
    ),
    (["keys", "age"], "keys.run_age", {"out": None, "force": False, "as_json": False}),
    (["keys", "public", "f"], "keys.run_public", {"file": P("f")}),
    (
        ["secrets", "set", "N", "--file", "f", "--value", "v", "--identity", "i", "--json"],
        "secrets.run_set",
        {"name": "N", "file": P("f"), "value": "v", "identity": P("i"), "as_json": True},
    ),
    (
        ["secrets", "list", "a", "b"],
        "secrets.run_list",
        {"files": [P("a"), P("b")], "as_json": False},
    ),
    (
        ["secrets", "get", "N", "--reveal"],
        "secrets.run_get",
        {"name": "N", "file": None, "reveal": True, "identity": None, "as_json": False},
    ),
    (
        ["secrets", "updatekeys", "--identity", "i"],
        "secrets.run_updatekeys",
        {"files": [], "identity": P("i"), "as_json": False},
    ),
    (
        ["secrets", "rotate", "f", "--json"],
        "secrets.run_rotate",
        {"files": [P("f")], "identity": None, "as_json": True},
    ),
    (
        ["serve", "--bundle-dir", "b", "--trust", "k", "--identity", "i", "--listen", "h:1",
         "--socket", "s", "--state-dir", "st", "--listen-public", "--dev-resolve", "x=1.2.3.4:5",
         "--dev-ca-cert", "ca", "--poll-interval", "3", "--workers", "2", "--log-format", "text",
         "--max-connections", "7", "--header-timeout", "1", "--keepalive-timeout", "2",
         "--body-timeout", "3", "--upstream-body-timeout", "4", "--shutdown-grace", "5"],
        "serve.run_serve",
        {"options": RuntimeOptions(
            bundle_dir=P("b"), trust=["k"], poll_interval=3.0, header_timeout=1.0,
            keepalive_timeout=2.0, body_timeout=3.0, shutdown_grace=5.0,
            upstream_body_timeout=4.0, identity=P("i"), state_dir=P("st"), max_connections=7,
            dev_resolve=["x=1.2.3.4:5"], dev_ca_cert=P("ca")),
         "listen": "h:1", "socket": P("s"), "listen_public": True, "workers": 2,
         "log_format": "text"},
    ),
    (
        ["check", "d", "--bundle", "b", "--trust", "k", "--env", "e", "--token-sha256", "h",
         "--credential", "c", "--method", "GET", "--path", "/x?y=z", "--header", "a=b", "--json"],
        "check.run_check",
        {"repo": P("d"), "bundle": P("b"), "trust": ["k"], "environment": "e", "consumer": None,
         "token_sha256": "h", "capability": None, "credential": "c", "method": "GET",
         "path": "/x?y=z", "headers": ["a=b"], "as_json": True},
    ),
    (
        ["test", "d", "f.yaml", "--bundle", "b", "--trust", "k", "--env", "e", "--json"],
        "policy_tests.run_tests",
        {"paths": [P("d"), P("f.yaml")], "bundle": P("b"), "trust": ["k"], "environment": "e",
         "as_json": True},
    ),
    (
        ["serve", "--bundle-dir", "b", "--trust", "k", "--upstream-max-connections", "64",
         "--upstream-max-per-host", "16", "--upstream-queue-timeout", "0.5"],
        "serve.run_serve",
        {"options": RuntimeOptions(
            bundle_dir=P("b"), trust=["k"], poll_interval=None, header_timeout=10.0,
            keepalive_timeout=30.0, body_timeout=60.0, shutdown_grace=10.0,
            upstream_body_timeout=600.0, upstream_max_connections=64, upstream_max_per_host=16,
            upstream_queue_timeout=0.5),
         "listen": None, "socket": None, "listen_public": False, "workers": 1,
         "log_format": "json"},
    ),
    (
        ["status", "--runtime", "http://127.0.0.1:1", "--json", "--wait", "2.5"],
        "status.run_status",
        {"runtime": "http://127.0.0.1:1", "as_json": True, "wait": 2.5},
    ),
    (
        ["verify", "b.tar.gz", "--trust", "k1", "--json"],
        "verify.run_verify",
        {"bundle": "b.tar.gz", "trust": ["k1"], "as_json": True, "plain_http": False},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "target", "expected"), CASES, ids=[" ".join(case[0][:3]) for case in CASES]
)
def test_every_option_reaches_the_typed_function(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], target: str, expected: dict[str, Any]
) -> None:
    module_name, function = target.split(".")
    module = importlib.import_module(f"aivault_ops.commands.{module_name}")
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 7

    monkeypatch.setattr(module, function, record)
    assert main(argv) == 7
    assert calls == [expected]
