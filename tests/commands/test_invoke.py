"""`aivault-ops invoke` against a real runtime subprocess and TLS upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bundles import CANARY, OTHER_TOKEN, TOKEN, BundleFactory
from support.fixtures import _session_upstream, bundle_dir, factory, start_runtime, upstream
from support.runtime_proc import RuntimeProcess, StartRuntime, free_port
from support.upstream import RecordingUpstream

from aivault_ops.main import main

__all__ = ["_session_upstream", "bundle_dir", "factory", "start_runtime", "upstream"]


@pytest.fixture
def runtime(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> RuntimeProcess:
    factory.publish(bundle_dir, 1)
    return start_runtime()


def invoke(
    capsysbinary: pytest.CaptureFixture[bytes], runtime: str, *args: str, token: str = TOKEN
) -> tuple[int, bytes, str]:
    code = main(["invoke", "my-api/users", "--runtime", runtime, "--token", token, *args])
    out, err = capsysbinary.readouterr()
    assert CANARY.encode() not in out + err
    return code, out, err.decode()


def test_prints_the_upstream_body(
    runtime: RuntimeProcess, upstream: RecordingUpstream, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = invoke(capsysbinary, runtime.url, "--path", "/v1/users/7")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ok": True, "path": "/v1/users/7", "method": "GET"}
    assert upstream.seen[0].header("authorization") == f"Bearer {CANARY}"


def test_json_output_query_headers_and_json_body(
    runtime: RuntimeProcess, upstream: RecordingUpstream, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = invoke(
        capsysbinary,
        runtime.url,
        "--method", "post", "--path", "/v1/users/echo",
        "--query", "a=1", "--query", "a=2", "--header", "x-trace=t1",
        "--json", '{"name": "ada"}', "--output", "json",
    )  # fmt: skip
    assert code == 0
    answer = json.loads(out)
    assert answer["status"] == 200
    echoed = json.loads(answer["body"])
    assert echoed["body"] == '{"name": "ada"}'
    assert echoed["headers"]["Authorization"] == "Bearer [REDACTED]"
    [seen] = upstream.seen
    assert seen.query == (("a", "1"), ("a", "2"))
    assert (seen.header("x-trace"), seen.header("content-type")) == ("t1", "application/json")


def test_body_file_is_read_by_the_cli_and_sent_byte_for_byte(
    runtime: RuntimeProcess,
    upstream: RecordingUpstream,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    data = bytes(range(256))
    (tmp_path / "body.bin").write_bytes(data)
    args = ["--method", "POST", "--path", "/v1/users", "--body-file", str(tmp_path / "body.bin")]
    code, _, _ = invoke(capsysbinary, runtime.url, *args)
    assert code == 0
    assert upstream.seen[0].body == data


def test_a_refusal_exits_1_with_the_error_on_stderr(
    runtime: RuntimeProcess, upstream: RecordingUpstream, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = invoke(capsysbinary, runtime.url, token=OTHER_TOKEN)
    assert (code, out) == (1, b"")
    assert err == (
        "aivault-ops: error: E-FORBIDDEN: consumer 'bystander' is not granted capability"
        " 'my-api/users'\n"
    )
    assert upstream.seen == []


def test_token_from_the_environment(
    runtime: RuntimeProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    monkeypatch.setenv("AIVAULT_OPS_TOKEN", TOKEN)
    code = main(["invoke", "my-api/users", "--runtime", runtime.url, "--path", "/v1/users"])
    out, _ = capsysbinary.readouterr()
    assert code == 0 and b'"ok": true' in out


def test_no_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AIVAULT_OPS_TOKEN", raising=False)
    assert main(["invoke", "my-api/users"]) == 2
    assert capsys.readouterr().err == (
        "aivault-ops: error: no consumer token: pass --token or set AIVAULT_OPS_TOKEN\n"
    )


def test_unreachable_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["invoke", "my-api/users", "--runtime", url, "--token", TOKEN]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aivault-ops: error: cannot reach the runtime at {url} (ConnectError)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query", "novalue"], "--query 'novalue': expected K=V"),
        (["--json", "{bad"], "--json: not valid JSON"),
        (["--runtime", "ftp://x"], "--runtime 'ftp://x': expected http://HOST:PORT or unix:/path"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoke", "my-api/users", "--token", TOKEN, *args]) == 2
    assert capsys.readouterr().err.startswith(f"aivault-ops: error: {message}")


def test_over_a_unix_socket(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    factory.publish(bundle_dir, 1)
    sock = tmp_path / "rt.sock"
    start_runtime("--socket", str(sock))
    code, out, _ = invoke(capsysbinary, f"unix:{sock}", "--path", "/v1/users")
    assert code == 0 and json.loads(out)["ok"] is True


def test_a_query_in_path_is_sent_as_query_parameters(
    runtime: RuntimeProcess, upstream: RecordingUpstream, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = "/v1/users?status=active&q=a%20b%26c&q=d+e"
    code, out, err = invoke(capsysbinary, runtime.url, "--path", path, "--query", "page=2")
    assert (code, err) == (0, "")
    assert json.loads(out)["path"] == "/v1/users"
    [seen] = upstream.seen
    assert seen.query == (("status", "active"), ("q", "a b&c"), ("q", "d e"), ("page", "2"))


def test_an_envelope_error_names_the_cli_flag(
    runtime: RuntimeProcess, upstream: RecordingUpstream, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = invoke(capsysbinary, runtime.url, "--path", "v1/users")
    assert (code, out) == (1, b"")
    assert err == "aivault-ops: error: E-ENVELOPE-INVALID: --path must start with '/'\n"
    assert upstream.seen == []


def test_a_fragment_in_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "my-api/users", "--token", TOKEN, "--path", "/v1/users#top"]) == 2
    assert capsys.readouterr().err == (
        "aivault-ops: error: --path '/v1/users#top': a fragment (#…) is never sent to a server;"
        " remove it\n"
    )
