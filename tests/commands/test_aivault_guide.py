"""aivault's custom-provider guide, run verbatim with `aivault-ops` in place of `aivault`.

A policy repo made by `init`; the guide's commands as subprocesses; then
`validate`, `apply` to a bundle directory, a real runtime (`serve`) whose
`--dev-resolve` sends api.example.com to a local TLS echo server, and the
guide's two `invoke`s with the consumer's token. The upstream must see the
method, path, query and Host the guide asked for, and the injected
Authorization header (its own log line: the runtime redacts the echo).
"""

from __future__ import annotations

import json
import shlex
import threading
from pathlib import Path

import pytest
from cli_support import InitProject, run_cli
from support.runtime_proc import RuntimeProcess

from aivault_ops.dev_upstream import make_certificates, serve_flags, start_server

SECRET = "canary-guide-9Kq2-secret"
GUIDE = f"""
aivault secrets create --name MY_CUSTOM_KEY --value "{SECRET}" --scope global
aivault credential create my-api --provider my-api --secret-ref "vault:secret:MY_CUSTOM_KEY" \\
  --auth header --header-name authorization --value-template "Bearer {{{{secret}}}}" --host api.example.com
aivault capability create my-api/users --provider my-api --credential my-api \\
  --method GET --method POST --path /v1/users --host api.example.com
aivault capability create my-api/orders --provider my-api --credential my-api \\
  --method GET --path /v1/orders --host api.example.com
"""  # noqa: E501
INVOKES = """
aivault invoke my-api/users --method GET
aivault invoke my-api/orders --method GET --path /v1/orders?status=active
"""


def _commands(text: str) -> list[list[str]]:
    lines = text.replace("\\\n", " ").strip().splitlines()
    commands = [shlex.split(line) for line in lines]
    assert all(command[0] == "aivault" for command in commands)
    return [command[1:] for command in commands]  # `aivault` → `aivault-ops`


def _ok(project: InitProject, *args: str | Path, env: dict[str, str] | None = None) -> str:
    result = run_cli(*args, cwd=project.workdir, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout
    return result.stdout


def test_the_guide_runs_with_aivault_ops(
    project: InitProject, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    for command in _commands(GUIDE):
        _ok(project, *command)
    consumer = project.root / "consumers" / "agent.yaml"
    consumer.write_text(
        consumer.read_text().replace('["example-api/*"]', '["example-api/*", "my-api/*"]')
    )
    _ok(project, "validate")
    bundles = tmp_path / "bundles"
    _ok(project, "apply", "--target", bundles, "--signing-key", project.signing_key)
    (tmp_path / "tls").mkdir()
    files = make_certificates(["api.example.com"], tmp_path / "tls")
    upstream = start_server(files)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    runtime = RuntimeProcess(
        bundle_dir=bundles, state_dir=tmp_path / "state", log_path=tmp_path / "runtime.log",
        args=["--identity", str(project.identity), "--trust", project.public_key,
              *serve_flags(["api.example.com"], upstream.server_address[1], files.ca_cert)],
    )  # fmt: skip
    runtime.start()
    try:
        capfd.readouterr()
        env = {"AIVAULT_OPS_TOKEN": project.token}
        answers = [
            json.loads(_ok(project, *command, "--runtime", runtime.url, env=env))
            for command in _commands(INVOKES)
        ]
        received = [line for line in capfd.readouterr().err.splitlines() if "upstream" in line]
    finally:
        runtime.stop()
        upstream.shutdown()
        upstream.server_close()
    bearer = repr(f"Bearer {SECRET}")
    assert received == [
        f"upstream received GET /v1/users authorization={bearer}",
        f"upstream received GET /v1/orders?status=active authorization={bearer}",
    ]
    for answer in answers:
        headers = {name.lower(): value for name, value in answer["echoedHeaders"].items()}
        assert headers["host"] == "api.example.com"
        assert headers["authorization"] != f"Bearer {SECRET}"
    assert [(a["method"], a["path"]) for a in answers] == [
        ("GET", "/v1/users"),
        ("GET", "/v1/orders?status=active"),
    ]
    assert SECRET not in runtime.log()
